"""``key-auth``: an API key in a header or a query parameter.

The key is looked up by its keyed hash (``Keyring.key_digest``) in the snapshot's
consumer index: one HMAC and one dictionary access, so the check never waits and
stays on the proxy's fast path.  No key -> no credential of this kind (another
authentication plugin, or ``anonymous``, may still apply); an unknown key -> 401.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from pydantic import Field, field_validator, model_validator

from campusgate.plugins.authentication import AuthAnswer, AuthConfig, AuthPlugin, Identity
from campusgate.plugins.base import PluginEnv, Wait
from campusgate.proxy.consumers import ConsumerInfo
from campusgate.proxy.context import RequestContext

__all__ = ["KeyAuthConfig", "KeyAuthPlugin", "remove_query_parameter"]

#: RFC 9110 section 5.6.2 ``token``: what a header (and here a parameter) name may be.
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789"
                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class KeyAuthConfig(AuthConfig):
    key_names: list[str] = Field(
        default_factory=lambda: ["apikey", "x-api-key"], min_length=1,
        description="Names the key may be sent under: header names (case-insensitive) "
                    "and query parameter names (exact).  In an Authorization header "
                    "the key may follow 'Bearer ' (as OpenAI's SDKs send it).")
    key_in_header: bool = Field(default=True, description="Look for the key in the headers.")
    key_in_query: bool = Field(default=True,
                               description="Look for the key in the query string.")

    @field_validator("key_names")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name or not set(name) <= _TOKEN_CHARS:
                raise ValueError(f"key name {name!r} must be a token (letters, digits, "
                                 "-_.!#$%&'*+^`|~)")
        return value

    @model_validator(mode="after")
    def _somewhere(self) -> KeyAuthConfig:
        if not (self.key_in_header or self.key_in_query):
            raise ValueError("key_in_header and key_in_query are both false: "
                             "the key could not be sent anywhere")
        return self


def remove_query_parameter(query: str, name: str) -> str:
    """``query`` without every ``name=...`` (or bare ``name``) parameter; the other
    parameters are kept byte for byte, in order."""
    return "&".join(part for part in query.split("&") if part.partition("=")[0] != name)


def _query_value(query: str, names: tuple[str, ...]) -> tuple[str, str] | None:
    """The first parameter of ``query`` named in ``names``: (name, decoded value)."""
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name in names:
            return name, unquote_plus(value) if ("%" in value or "+" in value) else value
    return None


#: How many recently matched keys a plugin instance remembers.
RECENT_KEYS = 4096


class KeyAuthPlugin(AuthPlugin):
    name = "key-auth"
    priority = 1250
    config_model = KeyAuthConfig
    scheme = "Key"

    def __init__(self, config: KeyAuthConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        header_names = dict.fromkeys(n.lower().encode("latin-1") for n in config.key_names)
        self.header_names = frozenset(header_names) if config.key_in_header else frozenset()
        self.query_names = tuple(dict.fromkeys(config.key_names)) if config.key_in_query else ()
        #: Keys that matched lately -> their entry, so a repeat skips the HMAC.  Only
        #: valid keys go in; it lives as long as this config revision (a revoked key
        #: is gone with the revision that revoked it).
        self.recent: dict[bytes | str, tuple[ConsumerInfo, str]] = {}

    def authenticate_now(self, ctx: RequestContext) -> AuthAnswer | Wait:
        key: bytes | str | None = None
        header: bytes | None = None
        if self.header_names:
            names = self.header_names
            for name, value in ctx.headers:
                if name in names:
                    key, header = value, name
                    if name == b"authorization" and value[:7].lower() == b"bearer ":
                        key = value[7:].strip()  # what the OpenAI SDKs send
                    break
        param: str | None = None
        if key is None and self.query_names and ctx.query:
            found = _query_value(ctx.query, self.query_names)
            if found is None:
                return None
            param, key = found
        if key is None:
            return None
        entry = self.recent.get(key)
        if entry is None:
            consumers = self.env.consumers
            entry = (consumers.api_keys.get(self.env.keyring.key_digest(key))
                     if key and consumers is not None else None)
            if entry is None:
                return self.reject(ctx, "invalid API key")
            if len(self.recent) >= RECENT_KEYS:
                self.recent.clear()
            self.recent[key] = entry
        if header is not None:
            self.strip(ctx, header)
        elif param is not None and self.auth.hide_credentials:
            ctx.query = remove_query_parameter(ctx.query, param)
        return Identity(entry[0], entry[1])


PLUGIN = KeyAuthPlugin
