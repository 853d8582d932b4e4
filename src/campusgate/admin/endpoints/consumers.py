"""``/consumers`` and the credentials nested in them.

Secrets are sealed (see ``config/sealing.py``) *before* the write, so that a new
credential can be checked against the others by its sealed identity and answered
with its id.  A secret the gateway generates is returned once, in the 201 answer to
``POST /consumers/{name}/credentials``; a secret the client chose is never echoed, and
every read shows credentials redacted (:func:`~campusgate.admin.schemas.credential_view`).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

from campusgate.admin.auth import require_admin
from campusgate.admin.context import (
    REVISION_HEADER,
    AdminContext,
    admin_context,
    no_content,
    write_source,
)
from campusgate.admin.errors import ApiError, Conflict, ValidationFailed
from campusgate.admin.lookup import (
    check_name_matches,
    ensure_credentials_free,
    ensure_not_anonymous,
    exists,
    find_consumer,
    find_credential,
)
from campusgate.admin.schemas import (
    ConsumerView,
    CredentialCreated,
    CredentialView,
    Page,
    credential_view,
    error_responses,
)
from campusgate.config.consumers import Credential, credential_natural_id
from campusgate.config.model import Consumer, Entities
from campusgate.config.sealing import is_sealed

__all__ = [
    "API_KEY_PREFIX",
    "build_router",
    "generate_api_key",
    "seal_credentials",
    "seal_entities",
]

Context = Annotated[AdminContext, Depends(admin_context)]

#: Generated API keys start with this, so that secret scanners can spot a leaked one.
API_KEY_PREFIX = "cg_"
_CREDENTIAL_TYPES = ("key-auth", "basic-auth", "jwt", "hmac-auth")
_credentials_adapter: TypeAdapter[list[Credential]] = TypeAdapter(list[Credential])
_credential_adapter: TypeAdapter[Credential] = TypeAdapter(Credential)


def generate_api_key() -> str:
    """``cg_`` + 256 random bits, base64url (43 characters)."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def _fill_in_secret(fields: dict[str, Any]) -> tuple[str, str] | None:
    """Generate the secret a credential body leaves out: ``(field, plaintext)``, or
    None when the client gave one (or a sealed form, or an asymmetric JWT key)."""
    kind = fields.get("type")
    if kind == "key-auth" and fields.get("key") is None and fields.get("key_hash") is None:
        return "key", generate_api_key()
    if (kind == "basic-auth" and fields.get("password") is None
            and fields.get("password_hash") is None):
        return "password", secrets.token_urlsafe(24)
    symmetric = kind == "hmac-auth" or (
        kind == "jwt" and str(fields.get("algorithm", "HS256")).startswith("HS")
        and fields.get("public_key") is None)
    if symmetric and fields.get("secret") is None and fields.get("secret_encrypted") is None:
        return "secret", secrets.token_urlsafe(32)
    return None


def _invalid(exc: ValidationError, prefix: Sequence[str | int] = ()) -> ValidationFailed:
    """422 with paths relative to the body, without pydantic's union tags
    (``credentials[0].key`` rather than ``credentials[0].key-auth.key``)."""
    errors = [
        {**err, "loc": (*prefix, *(p for p in err["loc"] if p not in _CREDENTIAL_TYPES))}
        for err in exc.errors()
    ]
    return ValidationFailed.from_errors(errors)


async def seal_entities(context: AdminContext, entities: Entities) -> Entities:
    """``entities`` with every secret sealed by the store's keyring, reusing the latest
    revision's sealed values where they still match (so an unchanged secret is no
    change)."""
    if is_sealed(entities):
        return entities
    if context.store.keyring is None:
        raise ApiError("this admin API has no secret key, so it cannot store credential "
                       "secrets; see docs/consumers.md")
    return await context.store.seal(entities)


async def seal_credentials(context: AdminContext, credentials: list[Credential]
                           ) -> list[Credential]:
    """``credentials`` with their secrets sealed (see :func:`seal_entities`)."""
    holder = Entities.model_construct(
        consumers=[Consumer.model_construct(name="-", credentials=credentials)])
    return (await seal_entities(context, holder)).consumers[0].credentials


async def _sealed_consumer(context: AdminContext, consumer: Consumer) -> Consumer:
    sealed = await seal_credentials(context, consumer.credentials)
    return consumer.model_copy(update={"credentials": sealed})


def build_router() -> APIRouter:
    router = APIRouter(
        prefix="/consumers",
        tags=["consumers"],
        dependencies=[Depends(require_admin)],
        responses=error_responses(401),
    )

    @router.get("", summary="List consumers (credentials redacted)")
    async def list_consumers(context: Context, response: Response) -> Page[ConsumerView]:
        entities = await context.read(response)
        return Page[ConsumerView](data=[ConsumerView.of(c) for c in entities.consumers])

    @router.post(
        "",
        summary="Create a consumer",
        description="Credentials may be given inline (their secrets are sealed and never "
        "shown again), or added later with POST /consumers/{name}/credentials.",
        status_code=status.HTTP_201_CREATED,
        responses=error_responses(409, 422),
    )
    async def create_consumer(
        body: Consumer, context: Context, request: Request, response: Response
    ) -> ConsumerView:
        consumer = await _sealed_consumer(context, body)

        def create(entities: Entities) -> None:
            if exists(find_consumer, entities, consumer.name):
                raise Conflict(f"a consumer named {consumer.name!r} already exists")
            _ensure_custom_id_free(entities, consumer)
            ensure_credentials_free(entities, consumer.credentials)
            entities.consumers.append(consumer)

        (await context.write(write_source(request), create)).tag(response)
        return ConsumerView.of(consumer)

    @router.get("/{name}", summary="Get a consumer (credentials redacted)",
                responses=error_responses(404))
    async def get_consumer(name: str, context: Context, response: Response) -> ConsumerView:
        entities = await context.read(response)
        return ConsumerView.of(entities.consumers[find_consumer(entities, name)])

    @router.put(
        "/{name}",
        summary="Create or replace a consumer",
        description="The body replaces the consumer (200) or creates it (201). Its "
        "credentials are kept unless the body has a `credentials` field, which then "
        "replaces them all.",
        responses={201: {"description": "Created", "model": ConsumerView},
                   **error_responses(409, 422)},
    )
    async def put_consumer(
        name: str, body: Consumer, context: Context, request: Request, response: Response
    ) -> ConsumerView:
        check_name_matches(body, name)
        replace_credentials = "credentials" in body.model_fields_set
        consumer = await _sealed_consumer(context, body)

        def put(entities: Entities) -> tuple[Consumer, bool]:
            new = consumer
            if exists(find_consumer, entities, name):
                index = find_consumer(entities, name)
                if not replace_credentials:
                    kept = entities.consumers[index].credentials
                    new = consumer.model_copy(update={"credentials": kept})
                _ensure_custom_id_free(entities, new)
                ensure_credentials_free(entities, new.credentials, except_consumer=name)
                entities.consumers[index] = new
                return new, False
            _ensure_custom_id_free(entities, new)
            ensure_credentials_free(entities, new.credentials)
            entities.consumers.append(new)
            return new, True

        written = await context.write(write_source(request), put)
        written.tag(response)
        stored, created = written.result
        if created:
            response.status_code = status.HTTP_201_CREATED
        return ConsumerView.of(stored)

    @router.patch(
        "/{name}",
        summary="Change some fields of a consumer",
        description="The body's top-level fields replace the consumer's; `credentials`, "
        "if given, replaces all credentials. Set a field to null to clear it.",
        responses=error_responses(404, 409, 422),
    )
    async def patch_consumer(
        name: str,
        fields: Annotated[dict[str, Any], Body(examples=[{"groups": ["partners"]}])],
        context: Context,
        request: Request,
        response: Response,
    ) -> ConsumerView:
        if "credentials" in fields:
            try:
                given = _credentials_adapter.validate_python(fields["credentials"])
            except ValidationError as exc:
                raise _invalid(exc, ("credentials",)) from None
            sealed = await seal_credentials(context, given)
            fields = fields | {"credentials": [c.model_dump(mode="json") for c in sealed]}

        def patch(entities: Entities) -> Consumer:
            index = find_consumer(entities, name)
            merged = entities.consumers[index].model_dump(mode="json") | fields
            try:
                consumer = Consumer.model_validate(merged)
            except ValidationError as exc:
                raise _invalid(exc) from None
            check_name_matches(consumer, name)
            _ensure_custom_id_free(entities, consumer)
            ensure_credentials_free(entities, consumer.credentials, except_consumer=name)
            entities.consumers[index] = consumer
            return consumer

        written = await context.write(write_source(request), patch)
        written.tag(response)
        return ConsumerView.of(written.result)

    @router.delete(
        "/{name}",
        summary="Delete a consumer and its credentials",
        description="Refused (409) while a plugin names it as its `anonymous` consumer.",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=error_responses(404, 409),
    )
    async def delete_consumer(name: str, context: Context, request: Request) -> Response:
        def delete(entities: Entities) -> None:
            index = find_consumer(entities, name)
            ensure_not_anonymous(entities, name)
            del entities.consumers[index]

        return no_content((await context.write(write_source(request), delete)).revision)

    _credential_routes(router)
    return router


def _credential_routes(router: APIRouter) -> None:
    @router.get("/{name}/credentials", summary="List a consumer's credentials (redacted)",
                responses=error_responses(404))
    async def list_credentials(
        name: str, context: Context, response: Response
    ) -> Page[CredentialView]:
        entities = await context.read(response)
        consumer = entities.consumers[find_consumer(entities, name)]
        return Page[CredentialView](data=[credential_view(c) for c in consumer.credentials])

    @router.post(
        "/{name}/credentials",
        summary="Add a credential; a missing secret is generated",
        description="`type` is `key-auth` (the default), `basic-auth`, `jwt` or "
        "`hmac-auth`. Leave out the secret (`key`, `password`, `secret`) and the gateway "
        "generates one: it is in this answer and nowhere else, ever. A secret you give "
        "is stored sealed and not echoed.",
        status_code=status.HTTP_201_CREATED,
        response_model=CredentialCreated,
        responses=error_responses(404, 409, 422),
    )
    async def create_credential(
        name: str,
        fields: Annotated[dict[str, Any], Body(examples=[
            {"type": "key-auth"},
            {"type": "basic-auth", "username": "district-sync"},
            {"type": "jwt", "key": "https://issuer.example.edu", "algorithm": "HS256"},
        ])],
        context: Context,
        request: Request,
    ) -> JSONResponse:
        fields = {"type": "key-auth"} | fields
        generated = _fill_in_secret(fields)
        if generated is not None:
            fields = fields | {generated[0]: generated[1]}
        try:
            given = _credential_adapter.validate_python(fields)
        except ValidationError as exc:
            raise _invalid(exc) from None
        (sealed,) = await seal_credentials(context, [given])
        cred_id = credential_natural_id(sealed)
        sealed = sealed.model_copy(update={"id": cred_id})

        def create(entities: Entities) -> None:
            consumer = entities.consumers[find_consumer(entities, name)]
            if any(credential_natural_id(c) == cred_id for c in consumer.credentials):
                raise Conflict(f"consumer {name!r} already has a credential {cred_id!r}")
            ensure_credentials_free(entities, [sealed])
            consumer.credentials.append(sealed)

        written = await context.write(write_source(request), create)
        body: dict[str, Any] = {"credential": credential_view(sealed).model_dump(mode="json")}
        if generated is not None:
            body[generated[0]] = generated[1]
        return JSONResponse(body, status_code=status.HTTP_201_CREATED,
                            headers={REVISION_HEADER: str(written.revision),
                                     "Cache-Control": "no-store"})

    @router.get("/{name}/credentials/{credential_id}", summary="Get a credential (redacted)",
                responses=error_responses(404))
    async def get_credential(
        name: str, credential_id: str, context: Context, response: Response
    ) -> CredentialView:
        entities = await context.read(response)
        consumer = entities.consumers[find_consumer(entities, name)]
        return credential_view(consumer.credentials[find_credential(consumer, credential_id)])

    @router.delete(
        "/{name}/credentials/{credential_id}",
        summary="Delete a credential (it stops working at once)",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=error_responses(404),
    )
    async def delete_credential(
        name: str, credential_id: str, context: Context, request: Request
    ) -> Response:
        def delete(entities: Entities) -> None:
            consumer = entities.consumers[find_consumer(entities, name)]
            del consumer.credentials[find_credential(consumer, credential_id)]

        return no_content((await context.write(write_source(request), delete)).revision)


def _ensure_custom_id_free(entities: Entities, consumer: Consumer) -> None:
    if consumer.custom_id is None:
        return
    for other in entities.consumers:
        if other.name != consumer.name and other.custom_id == consumer.custom_id:
            raise Conflict(f"custom_id {consumer.custom_id!r} is already used by consumer "
                           f"{other.name!r}")
