"""The processes' log format (workers, the supervisor, the log writer)."""

from __future__ import annotations

import logging
import os

__all__ = ["setup_logging"]


def setup_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=os.environ.get("CAMPUSGATE_LOG_LEVEL", "INFO").upper(),
            format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s",
        )
    logging.getLogger("alembic").setLevel(logging.WARNING)
