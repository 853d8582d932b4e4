"""What every authentication plugin shares, and how several on one route combine.

An authentication plugin (``key-auth``, ``basic-auth``, ``jwt``, ...) looks for its
kind of credential and answers one of three ways: there is none (``None``); it is
valid (an :class:`Identity`); it is not (a 401/403 :class:`LocalResponse`).

All the authentication plugins of a chain are compiled into one
:class:`AuthenticationStep`, which runs them in priority order: the first that finds
its credential decides.  When none finds one, the request is mapped to the
``anonymous`` consumer if a plugin names one, and is otherwise refused with a 401
carrying every plugin's ``WWW-Authenticate`` challenge (RFC 9110 section 11.6.1).
A credential that is present but wrong is refused even when anonymous access is
allowed: a bad key is a mistake to report, not a reason to downgrade silently.

On success the consumer is put on the request, identifying headers are added for
the upstream (names configurable), the same headers sent by the client are always
removed (so the upstream can trust them), and the credential itself is stripped
unless ``hide_credentials`` is false.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from campusgate.plugins.base import (
    AUTH_PRIORITY,
    WAIT,
    AccessAnswer,
    Plugin,
    PluginConfig,
    PluginEnv,
    Wait,
)
from campusgate.proxy.consumers import ConsumerInfo
from campusgate.proxy.context import HeaderList, LocalResponse, RequestContext

if TYPE_CHECKING:
    from campusgate.proxy.snapshot import Plan

__all__ = [
    "AUTH_PRIORITY",
    "GROUPS_HEADER_VAR",
    "AuthConfig",
    "AuthPlugin",
    "AuthenticationStep",
    "ConsumerHeaders",
    "Identity",
]

#: ``ctx.vars`` key: the (lower-case) header that names the consumer's groups upstream.
GROUPS_HEADER_VAR = "auth.groups_header"

HeaderName = str | None


class ConsumerHeaders(BaseModel):
    """Headers that tell the upstream who called; null turns one off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    consumer_id: HeaderName = "X-Consumer-Id"
    consumer_name: HeaderName = "X-Consumer-Name"
    consumer_custom_id: HeaderName = "X-Consumer-Custom-Id"
    consumer_groups: HeaderName = "X-Consumer-Groups"
    credential: HeaderName = "X-Credential-Identifier"
    anonymous: HeaderName = "X-Anonymous-Consumer"


class AuthConfig(PluginConfig):
    """Settings every authentication plugin has."""

    #: Consumer (by name) for requests without this kind of credential.
    anonymous: str | None = None
    #: Remove the credential before the request goes upstream.
    hide_credentials: bool = True
    headers: ConsumerHeaders = Field(default_factory=ConsumerHeaders)
    realm: str = Field(default="campusgate", pattern=r'^[^"\\]{1,64}$')


@dataclass(frozen=True, slots=True)
class Identity:
    """A successful authentication."""

    consumer: ConsumerInfo | None
    credential: str | None
    #: What the credential says (JWT claims, introspection response), if anything.
    claims: Mapping[str, Any] | None = None


AuthAnswer = Identity | LocalResponse | None


class AuthPlugin(Plugin):
    """Base of authentication plugins: override ``authenticate_now`` (never waits),
    or ``authenticate`` (may wait; then ``authenticate_now`` returns WAIT when it
    would have to)."""

    priority = AUTH_PRIORITY
    consumer_scoped: ClassVar[bool] = False
    config_model: ClassVar[type[PluginConfig]] = AuthConfig
    #: The auth-scheme of the ``WWW-Authenticate`` challenge (``Bearer``, ``Basic``...).
    scheme: ClassVar[str] = "Key"

    def __init__(self, config: PluginConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        assert isinstance(config, AuthConfig)
        self.auth = config

    def authenticate_now(self, ctx: RequestContext) -> AuthAnswer | Wait:
        return WAIT  # a plugin that overrides only ``authenticate`` always waits

    async def authenticate(self, ctx: RequestContext) -> AuthAnswer:
        answer = self.authenticate_now(ctx)
        if isinstance(answer, Wait):
            raise TypeError(f"plugin {self.name} returned WAIT but does not override "
                            "authenticate()")
        return answer

    def challenge(self, error: str | None = None, description: str | None = None) -> bytes:
        """The ``WWW-Authenticate`` value (RFC 6750 section 3 parameters for Bearer)."""
        value = f'{self.scheme} realm="{self.auth.realm}"'
        if error:
            value += f', error="{error}"'
        if description:
            value += ', error_description="{}"'.format(description.replace('"', "'"))
        return value.encode("latin-1", "replace")

    def reject(self, ctx: RequestContext, message: str, *, status: int = 401,
               error: str | None = None, code: str = "invalid_credentials") -> LocalResponse:
        """A refusal with this plugin's challenge."""
        challenge = self.challenge(error, message if error else None)
        return LocalResponse.error(status, code, message, ctx.request_id,
                                   [(b"www-authenticate", challenge)])

    def strip(self, ctx: RequestContext, header: bytes) -> None:
        """Keep ``header`` from the upstream, unless ``hide_credentials`` is off."""
        if self.auth.hide_credentials:
            ctx.upstream_headers_remove.add(header)

    def consumer_for(self, value: str, by: str = "name") -> ConsumerInfo | None:
        consumers = self.env.consumers
        return consumers.find(value, by) if consumers is not None else None


class AuthenticationStep(Plugin):
    """The authentication plugins of one chain, run as one access step."""

    name = "authentication"
    priority = AUTH_PRIORITY

    def __init__(self, members: tuple[AuthPlugin, ...], env: PluginEnv,
                 planner: Callable[[RequestContext], Plan | None],
                 scoped: bool = True) -> None:
        super().__init__(PluginConfig(), env)
        self.members = members
        self.planner = planner
        #: Some consumer or group has plugins of its own (else no plan to look up).
        self.scoped = scoped
        spoofable: set[bytes] = set()
        for member in members:
            for value in member.auth.headers.model_dump().values():
                if value:
                    spoofable.add(value.lower().encode())
        self.spoofable = frozenset(spoofable)
        anonymous = next((m.auth.anonymous for m in members if m.auth.anonymous), None)
        found = (None if anonymous is None or env.consumers is None
                 else env.consumers.find(anonymous))
        self.anonymous = None if found is None else replace(found, anonymous=True)
        self.anonymous_headers = next((m.auth.headers for m in members if m.auth.anonymous),
                                      members[0].auth.headers)
        #: (header names, consumer, credential, anonymous) -> the headers to add
        self._headers: dict[tuple[int, ConsumerInfo | None, str | None, bool],
                            tuple[tuple[bytes, bytes], ...]] = {}

    def _unspoof(self, ctx: RequestContext) -> None:
        """Consumer headers the client sent itself never reach the upstream."""
        spoofable = self.spoofable
        for name, _ in ctx.headers:
            if name in spoofable:
                ctx.upstream_headers_remove.add(name)

    def access_now(self, ctx: RequestContext) -> AccessAnswer:
        self._unspoof(ctx)
        for member in self.members:
            answer = member.authenticate_now(ctx)
            if answer is None:
                continue
            if isinstance(answer, Wait):
                return WAIT
            return self._settle(ctx, member, answer)
        return self._nobody(ctx)

    async def access(self, ctx: RequestContext) -> LocalResponse | None:
        self._unspoof(ctx)
        for member in self.members:
            answer = await member.authenticate(ctx)
            if answer is not None:
                return self._settle(ctx, member, answer)
        return self._nobody(ctx)

    def _settle(self, ctx: RequestContext, member: AuthPlugin,
                answer: Identity | LocalResponse) -> LocalResponse | None:
        if isinstance(answer, LocalResponse):
            return answer
        ctx.consumer = answer.consumer
        ctx.credential = answer.credential
        if answer.claims is not None:
            ctx.vars["auth.claims"] = answer.claims
        self._announce(ctx, member.auth.headers, answer.consumer, answer.credential)
        return None

    def _nobody(self, ctx: RequestContext) -> LocalResponse | None:
        if self.anonymous is not None:
            ctx.consumer = self.anonymous
            self._announce(ctx, self.anonymous_headers, self.anonymous, None, anonymous=True)
            return None
        challenges: HeaderList = [(b"www-authenticate", m.challenge()) for m in self.members]
        return LocalResponse.error(401, "unauthorized", "authentication required",
                                   ctx.request_id, challenges)

    def _announce(self, ctx: RequestContext, names: ConsumerHeaders,
                  consumer: ConsumerInfo | None, credential: str | None,
                  anonymous: bool = False) -> None:
        key = (id(names), consumer, credential, anonymous)
        headers = self._headers.get(key)
        if headers is None:
            headers = self._headers[key] = _consumer_headers(names, consumer, credential,
                                                             anonymous)
            if len(self._headers) > 65536:  # one entry per credential: a safety cap
                self._headers.clear()
        ctx.upstream_headers_add.extend(headers)
        if consumer is not None:
            if names.consumer_groups != "X-Consumer-Groups":  # acl looks for it
                ctx.vars[GROUPS_HEADER_VAR] = (names.consumer_groups or "").lower().encode()
            if self.scoped:
                plan = self.planner(ctx)
                if plan is not None:
                    ctx.plan = plan


def _consumer_headers(names: ConsumerHeaders, consumer: ConsumerInfo | None,
                      credential: str | None, anonymous: bool) -> tuple[tuple[bytes, bytes], ...]:
    """The headers that tell the upstream who called (built once per credential)."""
    out: list[tuple[bytes, bytes]] = []
    if consumer is not None:
        for header, value in ((names.consumer_id, consumer.id),
                              (names.consumer_name, consumer.name),
                              (names.consumer_custom_id, consumer.custom_id),
                              (names.consumer_groups, ", ".join(consumer.groups))):
            if header and value:
                out.append((header.encode(), value.encode()))
    if credential and names.credential:
        out.append((names.credential.encode(), credential.encode()))
    if anonymous and names.anonymous:
        out.append((names.anonymous.encode(), b"true"))
    return tuple(out)
