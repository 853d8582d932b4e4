"""The admin REST API (FastAPI): configuration CRUD, revisions, status."""

from campusgate.admin.app import create_admin_app
from campusgate.admin.runtime import RuntimeInfo, StaticRuntime

__all__ = ["RuntimeInfo", "StaticRuntime", "create_admin_app"]
