"""Generated configuration for the authentication scenarios, and their credentials.

Three scenarios put plugins on the one catch-all route of the ``plain`` scenario and
are compared with campusgate's own ``plain`` throughput of the same run:

- ``auth-memory``: ``key-auth`` + ``rate-limit`` (memory backend, by consumer, a
  limit that never triggers) on the route, ``request-id`` global;
- ``auth-redis``: the same with the rate-limit counters in Redis (a dedicated
  database of a private ``redis-server``);
- ``jwt-rs256``: the ``jwt`` plugin, an RS256 public key inline on a consumer's JWT
  credential (matched against ``iss``), and 100 distinct tokens that wrk rotates, so
  each token is verified once and then answered from the verified-token cache.

Everything here but :func:`new_rs256_key` is a pure function of its arguments, so
the generated files can be tested without starting anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cgbench.configs import campusgate_yaml

__all__ = [
    "API_KEY",
    "AUTH_SCENARIOS",
    "GOALS",
    "JWT_ISSUER",
    "REDIS_DB",
    "TOKEN_COUNT",
    "UNLIMITED",
    "AuthScenario",
    "auth_yaml",
    "jwt_lua",
    "new_rs256_key",
    "redis_url",
    "resp_command",
    "rotating_header_lua",
    "rs256_tokens",
    "scenario",
]

#: The consumer's API key (``auth-*``).  Sealed (hashed) when campusgate applies the file.
API_KEY = "cgbench-key-5d41402abc4b2a76b9719d911017c592"
#: The ``iss`` of every benchmark token; the consumer's JWT credential has this ``key``.
JWT_ISSUER = "cgbench-issuer"
#: The Redis database the ``auth-redis`` counters go to (flushed before the run).
REDIS_DB = 14
#: Requests per minute the rate limit allows: far above anything one core can serve,
#: so the limit is checked (and counted) on every request but never refuses one.
UNLIMITED = 1_000_000_000
#: Distinct tokens wrk rotates in ``jwt-rs256``.
TOKEN_COUNT = 100
#: Ten years: no token expires during a run.
TOKEN_LIFETIME_S = 10 * 365 * 24 * 3600
CONSUMER = "bench-app"


@dataclass(frozen=True, slots=True)
class AuthScenario:
    """One authentication scenario: its name, goal and what wrk must send."""

    name: str
    #: Throughput goal, as a fraction of campusgate's plain throughput (same run, body).
    goal: float
    #: ``rate-limit`` backend, or None when the scenario has no rate limit.
    rate_limit_backend: str | None
    #: Whether the requests carry a JWT (from a wrk script) rather than an API key.
    jwt: bool
    summary: str

    @property
    def needs_redis(self) -> bool:
        return self.rate_limit_backend == "redis"

    @property
    def wrk_headers(self) -> tuple[str, ...]:
        """``wrk -H`` values: the API key for the key-auth scenarios."""
        return () if self.jwt else (f"apikey: {API_KEY}",)


AUTH_SCENARIOS: dict[str, AuthScenario] = {
    s.name: s for s in (
        AuthScenario("auth-memory", 0.8, "memory", jwt=False,
                     summary="key-auth + rate-limit (memory) + request-id"),
        AuthScenario("auth-redis", 0.5, "redis", jwt=False,
                     summary="key-auth + rate-limit (redis) + request-id"),
        AuthScenario("jwt-rs256", 0.8, None, jwt=True,
                     summary=f"jwt, RS256, {TOKEN_COUNT} tokens rotated"),
    )
}
GOALS = {name: s.goal for name, s in AUTH_SCENARIOS.items()}


def scenario(name: str) -> AuthScenario:
    """The scenario called ``name`` (KeyError for an unknown one)."""
    return AUTH_SCENARIOS[name]


def redis_url(port: int, db: int = REDIS_DB) -> str:
    return f"redis://127.0.0.1:{port}/{db}"


def _route_plugins(s: AuthScenario) -> list[dict[str, object]]:
    if s.jwt:
        return [{"name": "jwt", "config": {"key_claim": "iss"}}]
    plugins: list[dict[str, object]] = [{"name": "key-auth",
                                         "config": {"key_names": ["apikey"]}}]
    if s.rate_limit_backend is not None:
        plugins.append({"name": "rate-limit", "config": {
            "limits": [{"window": "1m", "limit": UNLIMITED}],
            "by": "consumer",
            "backend": s.rate_limit_backend,
        }})
    return plugins


def _consumers(s: AuthScenario, public_key_pem: str | None) -> list[dict[str, object]]:
    if s.jwt:
        if public_key_pem is None:
            raise ValueError(f"{s.name} needs the RS256 public key")
        cred: dict[str, object] = {"type": "jwt", "key": JWT_ISSUER, "algorithm": "RS256",
                                   "public_key": public_key_pem}
    else:
        cred = {"type": "key-auth", "key": API_KEY}
    return [{"name": CONSUMER, "credentials": [cred]}]


def auth_yaml(name: str, *, proxy_port: int, admin_port: int, upstream_port: int,
              storage: Path, redis_port: int | None = None,
              public_key_pem: str | None = None) -> str:
    """The campusgate config of scenario ``name``: the plain route plus its plugins.

    ``redis_port`` is needed by ``auth-redis`` (the ``state`` setting points at its
    :data:`REDIS_DB`), ``public_key_pem`` by ``jwt-rs256``.
    """
    s = scenario(name)
    state = "memory"
    if s.needs_redis:
        if redis_port is None:
            raise ValueError(f"{name} needs a Redis port")
        state = redis_url(redis_port)
    return campusgate_yaml(
        proxy_port=proxy_port, admin_port=admin_port, upstream_port=upstream_port,
        storage=storage, state=state, route_plugins=_route_plugins(s),
        global_plugins=[{"name": "request-id"}],
        consumers=_consumers(s, public_key_pem),
    )


def new_rs256_key() -> tuple[str, str]:
    """A fresh 2048-bit RSA key: (private PEM, public PEM).  Made once per run."""
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048)
    return (key.as_pem(private=True).decode("ascii"),
            key.as_pem(private=False).decode("ascii"))


def rs256_tokens(private_key_pem: str, issued_at: int, count: int = TOKEN_COUNT) -> list[str]:
    """``count`` distinct RS256 JWTs (RFC 7519) signed with ``private_key_pem``.

    They differ in ``sub`` and ``jti``; all have ``iss`` = :data:`JWT_ISSUER` and
    expire ten years after ``issued_at``.
    """
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    key = RSAKey.import_key(private_key_pem)
    header = {"alg": "RS256", "typ": "JWT"}
    return [
        jwt.encode(header, {"iss": JWT_ISSUER, "sub": f"student{i:03d}", "jti": f"cgbench-{i}",
                            "iat": issued_at, "exp": issued_at + TOKEN_LIFETIME_S}, key)
        for i in range(count)
    ]


def jwt_lua(tokens: list[str], path: str = "/") -> str:
    """A wrk script sending ``path`` with each token in turn (``Authorization: Bearer``).

    The requests are formatted once, at init, as in the routing scenario, so wrk's
    per-request cost is picking the next string.
    """
    if not tokens:
        raise ValueError("no tokens")
    for token in tokens:  # base64url and dots only: safe inside a Lua string
        if not token.replace(".", "").replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"not a compact JWT: {token[:20]}...")
    return rotating_header_lua("Authorization", [f"Bearer {t}" for t in tokens], path)


def rotating_header_lua(header: str, values: list[str], path: str = "/") -> str:
    """A wrk script sending ``path`` with ``header`` set to each of ``values`` in turn
    (values must not hold quotes or backslashes: they go into Lua strings)."""
    if not values:
        raise ValueError("no values")
    if any('"' in v or "\\" in v for v in values):
        raise ValueError("a header value with a quote or backslash")
    rows = ",\n".join(f'  "{v}"' for v in values)
    return f"""-- generated by benchmarks/cgbench/auth.py
local values = {{
{rows}
}}
local reqs = {{}}
local n = 0
local i = 0

function init(args)
  for k, v in ipairs(values) do
    reqs[k] = wrk.format("GET", "{path}", {{["{header}"] = v}})
  end
  n = #reqs
  i = math.random(n) - 1
end

function request()
  i = i % n + 1
  return reqs[i]
end
"""


def resp_command(*args: str) -> bytes:
    """One Redis command in RESP (an array of bulk strings), for the harness's probes."""
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)
