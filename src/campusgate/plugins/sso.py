"""``sso``: put a login in front of any app (what oauth2-proxy does, built in).

A browser without a valid session is sent to sign in at an OpenID provider --
normally campusgate's own identity provider, and through it ClassLink or any other
source -- and comes back to the page it asked for with a session cookie.  Requests
that want JSON get a 401 instead.  The upstream sees who signed in through identity
headers (and, if configured, a short-lived signed JWT); copies of those headers sent
by the client are always removed, and the session cookie is never forwarded.

The plugin answers three paths of its own under the route (no extra routing):
``<base>/_sso/callback`` (the redirect URI to register at the provider),
``<base>/_sso/login?rd=/path`` and ``<base>/_sso/logout``, where ``<base>`` is
``base_path`` or, by default, the first segment of the request path (``/app`` for a
route ``paths: [/app]``).

Cost per request with a session: a cookie decrypt (remembered per cookie value) and
the rule check, no I/O.  Only sign-ins wait: discovery, the code exchange and the
JWK Set.  The parts: :mod:`._sso_session` (sealed cookies), :mod:`._sso_rules`
(rules, headers, upstream JWT), :mod:`._sso_provider` (the OIDC relying party),
:mod:`._sso_pages` (refusals), :mod:`._sso_config` (settings).
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

import httpx

from campusgate.auth.jwks import shared_jwks
from campusgate.auth.jwt_verify import TokenCache
from campusgate.plugins._sso_config import CookieSettings, SsoConfig
from campusgate.plugins._sso_pages import SsoRefusal, wants_json
from campusgate.plugins._sso_provider import (
    Discovery,
    ProviderMetadata,
    ProviderUnavailable,
    SignInFailed,
    authorization_url,
    exchange_code,
    pkce_pair,
    verify_id_token,
)
from campusgate.plugins._sso_rules import kept_claims, spoofable
from campusgate.plugins._sso_session import (
    CookieJar,
    LoginState,
    Session,
    SessionCodec,
    cookie_value,
    find_cookie,
    safe_return,
    set_cookie,
)
from campusgate.plugins.base import WAIT, AccessAnswer, Plugin, PluginEnv, Wait
from campusgate.proxy.addresses import AddressSet, parse_address
from campusgate.proxy.context import HeaderList, LocalResponse, RequestContext

__all__ = ["CookieSettings", "SsoConfig", "SsoPlugin"]

log = logging.getLogger("campusgate.plugins.sso")

#: Seconds a sign-in may take (the state cookie's lifetime).
LOGIN_LIFETIME: Final = 600
#: Seconds between two log lines about an unavailable provider.
LOG_INTERVAL: Final = 30.0


@dataclass(slots=True)
class _Known:
    """A session cookie already opened: its session, headers and rule answer."""

    session: Session
    headers: tuple[tuple[bytes, bytes], ...]
    denial: str | None
    jwt: tuple[str, float] | None = field(default=None)


class SsoPlugin(Plugin):
    name = "sso"
    priority = 1500
    config_model = SsoConfig
    consumer_scoped = False

    def __init__(self, config: SsoConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self.cfg = config
        binding = f"{config.issuer}\x00{config.client_id}\x00{config.cookie.name}"
        self.codec = SessionCodec(env.keyring.subkey("sso-cookies"), binding)
        jwt_header = config.upstream_jwt.header if config.upstream_jwt else None
        self.remove = spoofable(config.headers, [jwt_header])
        self.jwt_header = jwt_header.lower().encode() if jwt_header else None
        self.cache: TokenCache[_Known] = TokenCache(10_000)
        self.trusted = AddressSet(env.resources.trusted_proxies)
        client: httpx.AsyncClient = env.resources.cache(
            "http-client:sso", lambda: httpx.AsyncClient(follow_redirects=False))
        self.discovery: Discovery = env.resources.cache(
            f"sso-discovery:{config.issuer}:{config.timeout}",
            lambda: Discovery(config.issuer, client, config.timeout))
        self.http = client
        own = (config.callback_path, config.login_path, config.logout_path)
        self._own_suffixes = tuple("/" + p for p in own if not p.startswith("/"))
        self._own_paths = frozenset(p for p in own if p.startswith("/"))
        self._cookie_name = config.cookie.name.encode("latin-1")
        self._logged_at = -LOG_INTERVAL
        #: Seconds since the epoch (tests move it).
        self.clock = time.time

    # ------------------------------------------------------------ the access phase

    def access_now(self, ctx: RequestContext) -> AccessAnswer:
        ctx.upstream_headers_remove |= self.remove  # never the client's own copies
        return self._decide(ctx, self.discovery.current())

    async def access(self, ctx: RequestContext) -> LocalResponse | None:
        ctx.upstream_headers_remove |= self.remove
        answer = self._decide(ctx, self.discovery.current())
        try:
            if isinstance(answer, Wait) and ctx.path == self._path(ctx, self.cfg.callback_path):
                return await self._callback(ctx)
            if isinstance(answer, Wait):
                answer = self._decide(ctx, await self.discovery.get(), waited=True)
        except ProviderUnavailable as exc:
            return self._unavailable(ctx, str(exc))
        return None if isinstance(answer, Wait) else answer

    def _decide(self, ctx: RequestContext, meta: ProviderMetadata | None,
                waited: bool = False) -> AccessAnswer:
        """The answer when ``meta`` suffices (None: not fetched yet); WAIT otherwise."""
        path = ctx.path
        if not self._maybe_own(path):  # the common case: a page of the app
            return self._page(ctx, meta)
        if path == self._path(ctx, self.cfg.callback_path):
            return WAIT
        if path == self._path(ctx, self.cfg.logout_path):
            if self.cfg.end_provider_session and meta is None and not waited:
                return WAIT
            return self._logout(ctx, meta)
        if path == self._path(ctx, self.cfg.login_path):
            rd = dict(parse_qsl(ctx.query)).get("rd")
            return self._login(ctx, meta, safe_return(rd, self._home(ctx)))
        return self._page(ctx, meta)

    def _maybe_own(self, path: str) -> bool:
        """Whether ``path`` may be the callback, login or logout path (cheap: the
        exact check needs the request's base)."""
        return path.endswith(self._own_suffixes) or path in self._own_paths

    def _page(self, ctx: RequestContext, meta: ProviderMetadata | None) -> AccessAnswer:
        """A page of the app: pass with a session, else sign in (or 401 for an API)."""
        path = ctx.path
        known = self._session(ctx)
        if known is None:
            if wants_json(ctx):
                return self._login_required(ctx)
            query = "?" + ctx.query if ctx.query else ""
            return self._login(ctx, meta, safe_return(path + query, self._home(ctx)))
        if known.denial is not None:
            return SsoRefusal(403, "access_denied", "Not allowed", known.denial,
                              self._path(ctx, self.cfg.logout_path)).render(ctx)
        self._pass(ctx, known)
        return None

    # ------------------------------------------------------------ a signed-in request

    def _session(self, ctx: RequestContext) -> _Known | None:
        value = find_cookie(ctx.headers, self._cookie_name)
        if not value:
            return None
        now = self.clock()
        key = value.encode()
        known = self.cache.get(key, now)
        if known is None:
            session = Session.open(self.codec, value)
            if session is None:
                return None
            known = _Known(session, tuple(self.cfg.headers.build(session.claims)),
                           self.cfg.rules.denial(session.claims))
            self.cache.put(key, known, session.exp)
        if not known.session.valid_at(now, self.cfg.cookie.idle_timeout):
            return None
        return known

    def _pass(self, ctx: RequestContext, known: _Known) -> None:
        """Identity headers (and JWT) upstream, our cookies off the Cookie header, and
        the idle timer pushed forward now and then."""
        ctx.upstream_headers_add.extend(known.headers)
        ctx.vars["auth.claims"] = known.session.claims
        now = self.clock()
        jwt_cfg = self.cfg.upstream_jwt
        if jwt_cfg is not None and self.jwt_header is not None:
            if known.jwt is None or now >= known.jwt[1]:
                known.jwt = (jwt_cfg.sign(known.session.claims, now),
                             now + jwt_cfg.lifetime / 2)
            ctx.upstream_headers_add.append((self.jwt_header, known.jwt[0].encode()))
        headers = ctx.headers
        emptied = False
        for i, (name, value) in enumerate(headers):
            if name == b"cookie":
                kept = cookie_value(value, self.cfg.cookie.name)
                headers[i] = (name, kept)
                emptied = emptied or not kept
        if emptied:
            headers[:] = [(n, v) for n, v in headers if n != b"cookie" or v]
        idle = self.cfg.cookie.idle_timeout
        if idle and now - known.session.seen > idle / 4:
            fresh = replace(known.session, seen=now)
            sealed = fresh.seal(self.codec)
            if sealed is not None:
                ctx.response_headers_add.append(self._session_cookie(ctx, sealed))

    # ------------------------------------------------------------ sign-in

    def _login(self, ctx: RequestContext, meta: ProviderMetadata | None,
               return_to: str) -> AccessAnswer:
        """302 to the provider, with this sign-in's state in a cookie of its own."""
        if meta is None:
            return WAIT
        verifier, challenge = pkce_pair()
        callback = self._path(ctx, self.cfg.callback_path)
        login = LoginState(secrets.token_urlsafe(32), secrets.token_urlsafe(32), verifier,
                           return_to, self._origin(ctx) + callback,
                           self.clock() + LOGIN_LIFETIME)
        location = authorization_url(meta, self.cfg.client_id, login.redirect_uri,
                                     self.cfg.scopes, login.state, login.nonce, challenge)
        cookie = set_cookie(f"{self.cfg.cookie.name}_s_{login.cookie_suffix}",
                            login.seal(self.codec), path=callback, max_age=LOGIN_LIFETIME,
                            secure=self._https(ctx))
        return _redirect(302, location, [cookie])

    async def _callback(self, ctx: RequestContext) -> LocalResponse:
        params = dict(parse_qsl(ctx.query))
        again = self._path(ctx, self.cfg.login_path)
        state = params.get("state", "")
        name = f"{self.cfg.cookie.name}_s_{state[:16]}"
        raw = CookieJar.parse(ctx.headers).get(name) if state else None
        login = LoginState.open(self.codec, raw, self.clock()) if raw else None
        if login is None or not secrets.compare_digest(login.state, state):
            return SsoRefusal(400, "sign_in_expired", "Sign-in expired",
                              "This sign-in has expired or was not started here. Please "
                              "sign in again.", again).render(ctx)
        clear = set_cookie(name, "", path=ctx.path, max_age=0, secure=self._https(ctx))
        if "error" in params:
            denied = params["error"] == "access_denied"
            return SsoRefusal(403 if denied else 400, "sign_in_failed", "Sign-in failed",
                              "The sign-in was cancelled." if denied else
                              f"The provider reported {params['error'][:60]!r}.",
                              again).render(ctx, [clear])
        try:
            meta = await self.discovery.get()
            tokens = await exchange_code(self.http, meta, self.cfg.client_id,
                                         self.cfg.client_secret, params.get("code", ""),
                                         login.redirect_uri, login.verifier, self.cfg.timeout)
            claims = await verify_id_token(tokens["id_token"],
                                           shared_jwks(self.env.resources, meta.jwks_uri),
                                           meta.issuer, self.cfg.client_id, login.nonce,
                                           self.clock())
        except SignInFailed as exc:
            log.info("sso (%s): a sign-in failed: %s", self.env.scope, exc)
            return SsoRefusal(400, "sign_in_failed", "Sign-in failed", str(exc),
                              again).render(ctx, [clear])
        return self._signed_in(ctx, claims, tokens["id_token"], login, clear)

    def _signed_in(self, ctx: RequestContext, claims: dict[str, Any], id_token: str,
                   login: LoginState, clear: tuple[bytes, bytes]) -> LocalResponse:
        denial = self.cfg.rules.denial(claims)
        if denial is not None:
            log.info("sso (%s): %s refused: %s", self.env.scope, claims["sub"], denial)
            return SsoRefusal(403, "access_denied", "Not allowed", denial).render(ctx, [clear])
        now = self.clock()
        session = Session(kept_claims(claims), now, now + self.cfg.cookie.lifetime, now,
                          id_token if self.cfg.end_provider_session else None)
        sealed = session.seal(self.codec)
        if sealed is None:
            return SsoRefusal(400, "sign_in_failed", "Sign-in failed",
                              "Your identity is too large to keep in a session.").render(ctx)
        return _redirect(303, login.return_to, [clear, self._session_cookie(ctx, sealed)])

    def _login_required(self, ctx: RequestContext) -> LocalResponse:
        login = self._path(ctx, self.cfg.login_path)
        challenge = f'SSO realm="{self.cfg.issuer}", login_uri="{login}"'
        return LocalResponse.error(401, "login_required", "sign in first: this application "
                                   "needs a session", ctx.request_id,
                                   [(b"www-authenticate", challenge.encode("latin-1"))])

    # ------------------------------------------------------------ logout

    def _logout(self, ctx: RequestContext, meta: ProviderMetadata | None) -> LocalResponse:
        rd = dict(parse_qsl(ctx.query)).get("rd")
        target = safe_return(rd, self.cfg.logout_redirect or self._home(ctx))
        clear = set_cookie(self.cfg.cookie.name, "", path=self.cfg.cookie.path, max_age=0,
                           secure=self._https(ctx), domain=self.cfg.cookie.domain)
        if self.cfg.end_provider_session and meta is not None and meta.end_session_endpoint:
            after = target if "://" in target else self._origin(ctx) + target
            query = {"client_id": self.cfg.client_id, "post_logout_redirect_uri": after}
            value = CookieJar.parse(ctx.headers).get(self.cfg.cookie.name)
            session = Session.open(self.codec, value) if value else None
            if session is not None and session.id_token:
                query["id_token_hint"] = session.id_token
            separator = "&" if "?" in meta.end_session_endpoint else "?"
            target = meta.end_session_endpoint + separator + urlencode(query)
        return _redirect(302, target, [clear])

    # ------------------------------------------------------------ where and how

    def _home(self, ctx: RequestContext) -> str:
        base = self._base(ctx)
        return base + "/" if not base.endswith("/") else base

    def _base(self, ctx: RequestContext) -> str:
        if self.cfg.base_path is not None:
            return self.cfg.base_path.rstrip("/")
        first = ctx.path.split("/", 2)[1] if ctx.path.startswith("/") else ""
        return "/" + first if first else ""

    def _path(self, ctx: RequestContext, path: str) -> str:
        return path if path.startswith("/") else f"{self._base(ctx)}/{path}"

    def _https(self, ctx: RequestContext) -> bool:
        if self.cfg.public_url is not None:
            return self.cfg.public_url.startswith("https:")
        if ctx.scheme == "https":
            return True
        proto = ctx.header(b"x-forwarded-proto")
        if proto is None or not self.trusted:
            return False
        addr = parse_address(ctx.client_ip)
        return (addr is not None and addr in self.trusted
                and proto.split(b",")[0].strip().lower() == b"https")

    def _origin(self, ctx: RequestContext) -> str:
        if self.cfg.public_url is not None:
            return self.cfg.public_url
        return ("https://" if self._https(ctx) else "http://") + ctx.host

    def _session_cookie(self, ctx: RequestContext, value: str) -> tuple[bytes, bytes]:
        cookie = self.cfg.cookie
        return set_cookie(cookie.name, value, path=cookie.path, max_age=cookie.lifetime,
                          secure=self._https(ctx), domain=cookie.domain)

    def _unavailable(self, ctx: RequestContext, reason: str) -> LocalResponse:
        now = time.monotonic()
        if now - self._logged_at >= LOG_INTERVAL:
            self._logged_at = now
            log.warning("sso (%s): the provider %s is unavailable: %s", self.env.scope,
                        self.cfg.issuer, reason)
        return SsoRefusal(503, "provider_unavailable", "Sign-in is unavailable",
                          f"The sign-in service is not answering ({reason}). Please try "
                          "again in a moment.", retry_after=5).render(ctx)


def _redirect(status: int, location: str, headers: HeaderList) -> LocalResponse:
    return LocalResponse(status, b"", [(b"location", location.encode("latin-1")),
                                       (b"cache-control", b"no-store"), *headers],
                         b"text/plain")


PLUGIN = SsoPlugin
