"""Response shapes of the admin API (request bodies are the config models themselves).

Consumers and their credentials are shown *redacted*: no view carries a secret or its
sealed form (``key_hash``, ``password_hash``, ``secret_encrypted``).  Only
``GET /config`` returns sealed values, so that an export can be applied again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from campusgate.config.consumers import (
    BasicAuthCredential,
    Credential,
    JwtCredential,
    KeyAuthCredential,
    consumer_id,
    credential_natural_id,
)
from campusgate.config.diff import ChangeKind
from campusgate.config.model import Consumer, Entities, PluginSpec, Route

__all__ = [
    "BasicAuthView",
    "ChangeView",
    "ConfigChangeResult",
    "ConfigView",
    "ConsumerView",
    "CredentialCreated",
    "CredentialView",
    "ErrorBody",
    "ErrorDetail",
    "ErrorInfo",
    "Health",
    "HmacAuthView",
    "JwtView",
    "KeyAuthView",
    "Page",
    "RevisionView",
    "RouteView",
    "credential_view",
    "error_responses",
]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A list of objects."""

    data: list[T]


class ErrorDetail(BaseModel):
    path: str
    message: str


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] | None = None


class ErrorBody(BaseModel):
    error: ErrorInfo


class Health(BaseModel):
    status: Literal["ok"]


class ConfigView(BaseModel):
    revision: int
    config: Entities


class ChangeView(BaseModel):
    action: Literal["created", "updated", "deleted"]
    kind: ChangeKind
    name: str


class ConfigChangeResult(BaseModel):
    revision: int
    changed: bool
    changes: list[ChangeView]


class RevisionView(BaseModel):
    revision: int
    created_at: datetime
    source: str


class RouteView(Route):
    """A route, with the service it belongs to."""

    service: str


class KeyAuthView(BaseModel):
    """An API key: its id and visible prefix only."""

    type: Literal["key-auth"] = "key-auth"
    id: str
    key_prefix: str | None
    tags: list[str]


class BasicAuthView(BaseModel):
    type: Literal["basic-auth"] = "basic-auth"
    id: str
    username: str
    tags: list[str]


class JwtView(BaseModel):
    type: Literal["jwt"] = "jwt"
    id: str
    key: str
    algorithm: str
    public_key: str | None
    tags: list[str]


class HmacAuthView(BaseModel):
    type: Literal["hmac-auth"] = "hmac-auth"
    id: str
    key_id: str
    tags: list[str]


CredentialView = Annotated[
    KeyAuthView | BasicAuthView | JwtView | HmacAuthView, Field(discriminator="type")
]


def credential_view(cred: Credential) -> CredentialView:
    """What the admin API shows of a credential: never a secret, nor its sealed form."""
    ident = credential_natural_id(cred)
    if isinstance(cred, KeyAuthCredential):
        return KeyAuthView(id=ident, key_prefix=cred.key_prefix, tags=cred.tags)
    if isinstance(cred, BasicAuthCredential):
        return BasicAuthView(id=ident, username=cred.username, tags=cred.tags)
    if isinstance(cred, JwtCredential):
        return JwtView(id=ident, key=cred.key, algorithm=cred.algorithm,
                       public_key=cred.public_key, tags=cred.tags)
    return HmacAuthView(id=ident, key_id=cred.key_id, tags=cred.tags)


class ConsumerView(BaseModel):
    """A consumer, with its stable ``id`` and its credentials redacted."""

    id: str
    name: str
    custom_id: str | None
    groups: list[str]
    tags: list[str]
    plugins: list[PluginSpec]
    credentials: list[CredentialView]

    @classmethod
    def of(cls, consumer: Consumer) -> ConsumerView:
        return cls(
            id=consumer_id(consumer.name),
            name=consumer.name,
            custom_id=consumer.custom_id,
            groups=consumer.groups,
            tags=consumer.tags,
            plugins=consumer.plugins,
            credentials=[credential_view(c) for c in consumer.credentials],
        )


class CredentialCreated(BaseModel):
    """A new credential; the secret the gateway generated comes with it, this once."""

    credential: CredentialView
    key: str | None = Field(default=None, description="the generated API key (key-auth)")
    password: str | None = Field(default=None, description="the generated password "
                                 "(basic-auth)")
    secret: str | None = Field(default=None, description="the generated secret (jwt, "
                               "hmac-auth)")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the error statuses an endpoint may return."""
    return {status: {"model": ErrorBody} for status in statuses}
