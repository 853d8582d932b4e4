"""``/identity``: the identity provider's settings (issuer, scopes, lifetimes, login
throttle, plugins), without its clients.

The ``identity:`` section is an entity like the others: written through
:meth:`AdminContext.write`, revisioned, applied at once.  Its clients have their own
endpoints (``identity_clients.py``), so that no settings write can touch a client
secret; users, consents and signing keys are data in the identity directory, not
configuration (``identity_users.py``, ``identity_keys.py``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response, status
from pydantic import BaseModel, Field, ValidationError

from campusgate.admin.auth import require_admin
from campusgate.admin.context import (
    AdminContext,
    admin_context,
    no_content,
    write_source,
)
from campusgate.admin.errors import Conflict, NotFound, ValidationFailed
from campusgate.admin.schemas import error_responses
from campusgate.config.classlink_sandbox import ClassLinkSandbox
from campusgate.config.common import PluginSpec
from campusgate.config.identity import IdentityConfig, IdentityScope, LoginThrottle
from campusgate.config.model import Entities
from campusgate.identity.paths import OIDC_DISCOVERY

__all__ = ["IdentitySettingsView", "build_router", "identity_of", "require_identity"]

Context = Annotated[AdminContext, Depends(admin_context)]

_EXAMPLE = {"issuer": "https://id.example.edu",
            "scopes": [{"name": "roster.read", "description": "Read class rosters"}]}


class IdentitySettingsView(BaseModel):
    """The identity provider's settings; ``clients`` is how many are registered."""

    issuer: str
    discovery_url: str = Field(description="where clients find every endpoint URL")
    scopes: list[IdentityScope]
    code_lifetime: int
    session_idle_lifetime: int
    session_lifetime: int
    login_throttle: LoginThrottle
    plugins: list[PluginSpec]
    classlink_sandbox: ClassLinkSandbox | None = None
    sources: list[dict[str, Any]] = Field(
        default_factory=list, description="login sources (their client secrets left out)")
    clients: int = Field(description="registered clients (see /identity/clients)")

    @classmethod
    def of(cls, config: IdentityConfig) -> IdentitySettingsView:
        return cls(**config.model_dump(exclude={"clients", "sources"}),
                   sources=[source.model_dump(exclude={"client_secret",
                                                       "client_secret_encrypted"})
                            for source in config.sources],
                   discovery_url=config.issuer + OIDC_DISCOVERY, clients=len(config.clients))


def identity_of(entities: Entities) -> IdentityConfig:
    """The ``identity`` section, or 404 when the provider is not configured."""
    if entities.identity is None:
        raise NotFound("the identity provider is not configured: PUT /identity with an "
                       "issuer turns it on")
    return entities.identity


def require_identity(entities: Entities) -> IdentityConfig:
    """The ``identity`` section, or 409 when there is none to add a client to."""
    if entities.identity is None:
        raise Conflict("the identity provider is not configured: set identity.issuer "
                       "first (PUT /identity {\"issuer\": \"https://...\"})")
    return entities.identity


def _settings(fields: dict[str, Any], entities: Entities) -> IdentityConfig:
    """``fields`` as the new settings, keeping the registered clients (422 if invalid)."""
    if "clients" in fields:
        raise ValidationFailed(
            "clients are not settings: use /identity/clients",
            [{"path": "clients", "message": "manage clients at /identity/clients"}])
    clients = entities.identity.clients if entities.identity is not None else []
    if "sources" not in fields and entities.identity is not None:  # kept, like clients
        fields = {**fields, "sources": [s.model_dump() for s in entities.identity.sources]}
    try:
        return IdentityConfig.model_validate({**fields, "clients": clients})
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from None


def build_router() -> APIRouter:
    router = APIRouter(
        prefix="/identity",
        tags=["identity"],
        dependencies=[Depends(require_admin)],
        responses=error_responses(401),
    )

    @router.get("", summary="Get the identity provider's settings",
                responses=error_responses(404))
    async def get_settings(context: Context, response: Response) -> IdentitySettingsView:
        entities = await context.read(response)
        return IdentitySettingsView.of(identity_of(entities))

    @router.put(
        "",
        summary="Turn on the identity provider, or replace its settings",
        description="Creates the `identity` section (201) or replaces its settings (200); "
        "fields left out take their defaults. Registered clients are kept: they are "
        "managed at /identity/clients.",
        responses={201: {"description": "Created", "model": IdentitySettingsView},
                   **error_responses(422)},
    )
    async def put_settings(
        fields: Annotated[dict[str, Any], Body(examples=[_EXAMPLE])],
        context: Context, request: Request, response: Response,
    ) -> IdentitySettingsView:
        def put(entities: Entities) -> tuple[IdentityConfig, bool]:
            created = entities.identity is None
            entities.identity = _settings(fields, entities)
            return entities.identity, created

        written = await context.write(write_source(request), put)
        written.tag(response)
        config, created = written.result
        if created:
            response.status_code = status.HTTP_201_CREATED
        return IdentitySettingsView.of(config)

    @router.patch(
        "",
        summary="Change some of the identity provider's settings",
        description="The body's top-level fields replace the current ones.",
        responses=error_responses(404, 422),
    )
    async def patch_settings(
        fields: Annotated[dict[str, Any], Body(examples=[{"code_lifetime": 30}])],
        context: Context, request: Request, response: Response,
    ) -> IdentitySettingsView:
        def patch(entities: Entities) -> IdentityConfig:
            current = identity_of(entities).model_dump(mode="json", exclude={"clients"})
            entities.identity = _settings(current | fields, entities)
            return entities.identity

        written = await context.write(write_source(request), patch)
        written.tag(response)
        return IdentitySettingsView.of(written.result)

    @router.delete(
        "",
        summary="Turn off the identity provider",
        description="Refused (409) while clients are registered. Users, consents and "
        "signing keys stay in the directory for when it is turned on again.",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=error_responses(404, 409),
    )
    async def delete_settings(context: Context, request: Request) -> Response:
        def delete(entities: Entities) -> None:
            config = identity_of(entities)
            if config.clients:
                names = ", ".join(c.client_id for c in config.clients[:5])
                raise Conflict(f"{len(config.clients)} client(s) are registered ({names}); "
                               "delete them first")
            entities.identity = None

        return no_content((await context.write(write_source(request), delete)).revision)

    return router
