"""``/identity/clients``: the applications registered with the identity provider.

Clients live in the ``identity`` section of the entities and are written like
consumers.  A client secret is sealed (a keyed hash and a visible prefix, see
``config/sealing.py``) *before* the write, so the answer can show its prefix.  A
secret the gateway generates is returned once, in the answer that made it (with
``Cache-Control: no-store``); a secret the operator chose is never echoed; every read
shows ``client_secret_prefix`` only.  Updates (PUT, PATCH) keep the secret: the one way
to change it is ``POST /identity/clients/{client_id}/secret``.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from campusgate.admin.auth import require_admin
from campusgate.admin.context import (
    REVISION_HEADER,
    AdminContext,
    admin_context,
    no_content,
    write_source,
)
from campusgate.admin.endpoints.consumers import seal_entities
from campusgate.admin.endpoints.identity_directory import Directory
from campusgate.admin.endpoints.identity_settings import require_identity
from campusgate.admin.errors import Conflict, NotFound, ValidationFailed
from campusgate.admin.schemas import Page, error_responses
from campusgate.config.identity import IdentityClient, IdentityConfig
from campusgate.config.model import Entities

__all__ = [
    "CLIENT_ID_PREFIX",
    "CLIENT_SECRET_PREFIX",
    "ClientCreated",
    "ClientView",
    "SecretRotated",
    "build_router",
    "generate_client_id",
    "generate_client_secret",
]

Context = Annotated[AdminContext, Depends(admin_context)]

#: Generated client ids and secrets start with these, so that a leaked secret is
#: recognisable to secret scanners.
CLIENT_ID_PREFIX = "cgc_"
CLIENT_SECRET_PREFIX = "cgs_"
#: Never accepted by PUT or PATCH (the secret changes only by rotation).
_SECRET_FIELDS = ("client_secret", "client_secret_hash", "client_secret_prefix")
_SECRET_METHODS = ("client_secret_basic", "client_secret_post")
_NO_STORE = {"Cache-Control": "no-store"}
_EXAMPLE = {"client_id": "lms", "name": "District LMS",
            "redirect_uris": ["https://lms.example.edu/callback"]}


def generate_client_id() -> str:
    """``cgc_`` + 96 random bits, base64url (16 characters)."""
    return CLIENT_ID_PREFIX + secrets.token_urlsafe(12)


def generate_client_secret() -> str:
    """``cgs_`` + 256 random bits, base64url (43 characters)."""
    return CLIENT_SECRET_PREFIX + secrets.token_urlsafe(32)


class ClientView(BaseModel):
    """A client as the admin API shows it: no secret, nor its hash."""

    client_id: str
    name: str | None
    public: bool
    client_secret_prefix: str | None
    token_endpoint_auth_method: str
    jwks: dict[str, object] | None
    jwks_uri: str | None
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    initiate_login_uri: str | None = None
    grant_types: list[str]
    scopes: list[str]
    audience: list[str]
    access_token_format: str
    access_token_lifetime: int
    id_token_lifetime: int
    refresh_token_lifetime: int
    id_token_signed_response_alg: str
    require_consent: bool
    allow_pkce_plain: bool
    can_introspect: bool
    tags: list[str]

    @classmethod
    def of(cls, client: IdentityClient) -> ClientView:
        shown = client.model_dump(exclude={"client_secret", "client_secret_hash"})
        return cls(**shown, public=client.public)


class ClientCreated(BaseModel):
    """A new client; a secret the gateway generated comes with it, this once."""

    client: ClientView
    client_secret: str | None = None


class SecretRotated(BaseModel):
    """A client's new secret, shown this once; the previous one no longer works."""

    client: ClientView
    client_secret: str
    previous_secret: Literal["revoked"] = "revoked"
    message: str


def _find(config: IdentityConfig, client_id: str) -> int:
    for index, client in enumerate(config.clients):
        if client.client_id == client_id:
            return index
    raise NotFound(f"no identity client {client_id!r}")


def _client_index(entities: Entities, client_id: str) -> tuple[IdentityConfig, int]:
    if entities.identity is None:
        raise NotFound(f"no identity client {client_id!r} (the identity provider is not "
                       "configured)")
    return entities.identity, _find(entities.identity, client_id)


async def _seal_client(context: AdminContext, client: IdentityClient) -> IdentityClient:
    """``client`` with its plaintext secret (if any) sealed by the store's keyring."""
    holder = Entities.model_construct(identity=IdentityConfig.model_construct(
        issuer="https://sealing.invalid", clients=[client]))
    sealed = (await seal_entities(context, holder)).identity
    assert sealed is not None
    return sealed.clients[0]


async def _fresh_secret(context: AdminContext) -> tuple[str, IdentityClient]:
    """A generated secret and a stand-in client holding its sealed form."""
    secret = generate_client_secret()
    holder = IdentityClient.model_construct(client_id="sealing", client_secret=secret)
    return secret, await _seal_client(context, holder)


def _with_secret(fields: dict[str, Any], old: IdentityClient, fresh: IdentityClient
                 ) -> tuple[dict[str, Any], bool]:
    """``fields`` with the secret ``old`` had; a fresh one when the client now needs a
    secret it did not have, none when it no longer uses one.  Returns ``(fields,
    fresh_used)``."""
    method = fields.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in _SECRET_METHODS:
        return fields | dict.fromkeys(_SECRET_FIELDS), False
    source, used = (old, False) if old.client_secret_hash or old.client_secret else (fresh, True)
    return fields | {name: getattr(source, name) for name in _SECRET_FIELDS}, used


def _refuse_secret_fields(fields: dict[str, Any], client_id: str) -> None:
    given = [name for name in _SECRET_FIELDS if name in fields]
    if given:
        message = (f"the secret is not changed by an update: POST /identity/clients/"
                   f"{client_id}/secret rotates it")
        raise ValidationFailed(message, [{"path": name, "message": message} for name in given])


def _check_id(fields: dict[str, Any], client_id: str) -> dict[str, Any]:
    given = fields.get("client_id", client_id)
    if given != client_id:
        raise ValidationFailed(
            f"the body names client {given!r} but the URL names {client_id!r}",
            [{"path": "client_id", "message": f"must match the URL ({client_id!r})"}])
    return fields | {"client_id": client_id}


def _secret_answer(model: BaseModel, revision: int, status_code: int = 200) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"), status_code=status_code,
                        headers={REVISION_HEADER: str(revision), **_NO_STORE})


def build_router() -> APIRouter:
    router = APIRouter(
        prefix="/identity/clients",
        tags=["identity"],
        dependencies=[Depends(require_admin)],
        responses=error_responses(401),
    )

    @router.get("", summary="List identity clients (secrets redacted)")
    async def list_clients(context: Context, response: Response) -> Page[ClientView]:
        entities = await context.read(response)
        clients = entities.identity.clients if entities.identity is not None else []
        return Page[ClientView](data=[ClientView.of(c) for c in clients])

    @router.post(
        "",
        summary="Register a client; a missing id or secret is generated",
        description="Leave out `client_id` and one is generated (`cgc_...`). A "
        "confidential client (`client_secret_basic`, the default, or "
        "`client_secret_post`) without `client_secret` gets a generated one: it is in "
        "this answer and nowhere else, ever. A secret you give is stored sealed and not "
        "echoed. Public clients use `token_endpoint_auth_method: none` (and PKCE). "
        "409 when the identity provider is not configured yet (PUT /identity).",
        status_code=status.HTTP_201_CREATED,
        response_model=ClientCreated,
        responses=error_responses(409, 422),
    )
    async def create_client(
        fields: Annotated[dict[str, Any], Body(examples=[_EXAMPLE])],
        context: Context,
        request: Request,
    ) -> JSONResponse:
        fields = {"client_id": generate_client_id()} | fields
        generated = None
        if (fields.get("token_endpoint_auth_method", "client_secret_basic") in _SECRET_METHODS
                and fields.get("client_secret") is None
                and fields.get("client_secret_hash") is None):
            generated = generate_client_secret()
            fields = fields | {"client_secret": generated}
        try:
            given = IdentityClient.model_validate(fields)
        except ValidationError as exc:
            raise ValidationFailed.from_pydantic(exc) from None
        client = await _seal_client(context, given)

        def create(entities: Entities) -> None:
            config = require_identity(entities)
            if config.client(client.client_id) is not None:
                raise Conflict(f"an identity client {client.client_id!r} already exists")
            config.clients.append(client)

        written = await context.write(write_source(request), create)
        created = ClientCreated(client=ClientView.of(client), client_secret=generated)
        return _secret_answer(created, written.revision, status.HTTP_201_CREATED)

    @router.get("/{client_id}", summary="Get an identity client (secret redacted)",
                responses=error_responses(404))
    async def get_client(client_id: str, context: Context, response: Response) -> ClientView:
        entities = await context.read(response)
        config, index = _client_index(entities, client_id)
        return ClientView.of(config.clients[index])

    async def update(client_id: str, fields: dict[str, Any], merge: bool,
                     context: AdminContext, request: Request) -> JSONResponse:
        _refuse_secret_fields(fields, client_id)
        fields = _check_id(fields, client_id)
        fresh_secret, fresh = await _fresh_secret(context)

        def change(entities: Entities) -> tuple[IdentityClient, bool]:
            config, index = _client_index(entities, client_id)
            old = config.clients[index]
            base = old.model_dump(mode="json", exclude=set(_SECRET_FIELDS)) if merge else {}
            merged, fresh_used = _with_secret(base | fields, old, fresh)
            try:
                config.clients[index] = IdentityClient.model_validate(merged)
            except ValidationError as exc:
                raise ValidationFailed.from_pydantic(exc) from None
            return config.clients[index], fresh_used

        written = await context.write(write_source(request), change)
        client, fresh_used = written.result
        if fresh_used:  # it became confidential: its first secret, shown this once
            created = ClientCreated(client=ClientView.of(client), client_secret=fresh_secret)
            return _secret_answer(created, written.revision)
        return JSONResponse(ClientView.of(client).model_dump(mode="json"),
                            headers={REVISION_HEADER: str(written.revision)})

    update_description = (
        "The secret is kept (`client_secret*` fields are refused; rotate it with POST "
        "/identity/clients/{client_id}/secret). A client that turns confidential gets a "
        "generated secret, returned this once as `{\"client\", \"client_secret\"}`; one "
        "that turns public or `private_key_jwt` loses its secret.")

    @router.put(
        "/{client_id}",
        summary="Replace an identity client's settings (not its secret)",
        description="Fields left out take their defaults. " + update_description,
        response_model=ClientView,
        responses=error_responses(404, 422),
    )
    async def put_client(
        client_id: str,
        fields: Annotated[dict[str, Any], Body(examples=[_EXAMPLE])],
        context: Context,
        request: Request,
    ) -> JSONResponse:
        return await update(client_id, fields, False, context, request)

    @router.patch(
        "/{client_id}",
        summary="Change some fields of an identity client (not its secret)",
        description="The body's top-level fields replace the client's. " + update_description,
        response_model=ClientView,
        responses=error_responses(404, 422),
    )
    async def patch_client(
        client_id: str,
        fields: Annotated[dict[str, Any], Body(examples=[{"require_consent": False}])],
        context: Context,
        request: Request,
    ) -> JSONResponse:
        return await update(client_id, fields, True, context, request)

    @router.delete(
        "/{client_id}",
        summary="Delete an identity client",
        description="It can no longer sign users in or get tokens. Its users' consents "
        "(and the refresh tokens granted with them) are revoked too, so that a client "
        "registered later under the same id starts from nothing.",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=error_responses(404),
    )
    async def delete_client(
        client_id: str, context: Context, directory: Directory, request: Request
    ) -> Response:
        def delete(entities: Entities) -> None:
            config, index = _client_index(entities, client_id)
            del config.clients[index]

        written = await context.write(write_source(request), delete)
        for consent in await directory.list_consents(client_id=client_id):
            await directory.revoke_consent(consent.user_id, client_id)
        return no_content(written.revision)

    @router.post(
        "/{client_id}/secret",
        summary="Rotate a client's secret",
        description="Generates a new secret and returns it this once. The previous "
        "secret stops working at once: update the application with the new one.",
        response_model=SecretRotated,
        responses=error_responses(404, 409),
    )
    async def rotate_secret(client_id: str, context: Context, request: Request
                            ) -> JSONResponse:
        secret, fresh = await _fresh_secret(context)

        def rotate(entities: Entities) -> IdentityClient:
            config, index = _client_index(entities, client_id)
            old = config.clients[index]
            if old.token_endpoint_auth_method not in _SECRET_METHODS:
                raise Conflict(f"client {client_id!r} uses {old.token_endpoint_auth_method}: "
                               "it has no secret to rotate")
            config.clients[index] = old.model_copy(
                update={name: getattr(fresh, name) for name in _SECRET_FIELDS})
            return config.clients[index]

        written = await context.write(write_source(request), rotate)
        rotated = SecretRotated(
            client=ClientView.of(written.result), client_secret=secret,
            message="the previous secret no longer works; this one is shown only now")
        return _secret_answer(rotated, written.revision)

    return router
