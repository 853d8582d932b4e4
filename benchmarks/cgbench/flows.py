"""Simulated browsers against campusgate's identity provider (the ``idp-flows`` scenario).

``python -m cgbench.flows --port P --mode flows|signin`` runs ``--browsers`` browsers
at once, each an ``httpx.AsyncClient`` with its own cookie jar and keep-alive
connection, for a warm-up and then ``--duration`` measured seconds (closed loop: a
browser starts its next operation when the last one is done), and prints one JSON
object.  Operations per second count each operation for the share of it that fell
in the measured window (:func:`window_ops`); latencies are those of the operations
that finished in it.

- ``signin``: one operation is a sign-in by a browser without cookies: the
  authorization request, the redirect to the login page, the page (its form and
  CSRF token parsed), the form POST with username and password, and the 303 back to
  the authorization endpoint with a session cookie.  The POST's password check
  (argon2id) dominates.
- ``flows``: each browser signs in once before the clock starts; one operation is
  then an authorization-code flow with PKCE on that session: the authorization
  request (a new ``state``, ``nonce`` and S256 challenge) answered by a redirect
  with the code, checked for ``state`` and ``iss``, then the token request with the
  code and ``code_verifier`` (client_secret_basic), answered with an access token
  and an ID token.

With ``--worker-pid`` the campusgate worker's CPU time over the measured window is
read from ``/proc``, as is this driver's own, so that a driver short of CPU can be
told from a slow server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvloop

from cgbench import idp
from cgbench.loadgen import summarize
from cgbench.procs import cpu_seconds

__all__ = ["FlowSettings", "main", "result_of", "run_browsers", "window_ops"]

_REDIRECTS = (302, 303)


@dataclass(frozen=True)
class FlowSettings:
    port: int
    mode: str
    browsers: int
    duration: float
    warmup: float
    authorize_path: str = "/oauth2/authorize"
    token_path: str = "/oauth2/token"
    worker_pid: int | None = None

    @property
    def issuer(self) -> str:
        return idp.issuer_of(self.port)


@dataclass
class _Tally:
    """What the browsers did after the clock started."""

    measure_from: float = 0.0
    until: float = 0.0
    #: (started, finished) of every operation that succeeded.
    spans: list[tuple[float, float]] = field(default_factory=list)
    errors: int = 0
    samples: list[str] = field(default_factory=list)
    refresh_tokens: int = 0

    def failed(self, finished: float, exc: BaseException) -> None:
        if finished >= self.measure_from:
            self.errors += 1
            if len(self.samples) < 3:
                self.samples.append(f"{type(exc).__name__}: {exc}"[:500])


def window_ops(spans: Sequence[tuple[float, float]], start: float, end: float) -> float:
    """Operations done within [start, end]: each counts for the share of its duration
    that falls inside.  Slow operations (a sign-in takes a good part of a second and
    several finish together) would otherwise make the count jump by whole batches
    depending on where the window's edges fall."""
    done = 0.0
    for began, finished in spans:
        if finished <= start or began >= end:
            continue
        if finished <= began:
            done += 1.0
            continue
        inside = min(finished, end) - max(began, start)
        done += inside / (finished - began)
    return done


class _Browser:
    """One browser: a cookie jar and a connection."""

    def __init__(self, s: FlowSettings) -> None:
        self.s = s
        self.client = httpx.AsyncClient(base_url=s.issuer, timeout=60.0)
        self.basic = idp.basic_auth(idp.FLOW_CLIENT, idp.SECRETS[idp.FLOW_CLIENT])

    def _redirect(self, response: httpx.Response) -> str:
        if response.status_code not in _REDIRECTS:
            raise idp.IdpError(f"{response.request.method} {response.request.url.path} "
                               f"answered {response.status_code}, not a redirect: "
                               f"{response.text[:300]}")
        return response.headers["location"]

    async def _authorize(self, state: str, challenge: str) -> str:
        params = idp.authorization_params(state=state, nonce=idp.new_state(),
                                          code_challenge=challenge)
        return self._redirect(await self.client.get(self.s.authorize_path, params=params))

    async def sign_in(self) -> tuple[str, str, str]:
        """From no session to the 303 back to the authorization endpoint.

        Returns that URL, the request's state and its code_verifier."""
        state = idp.new_state()
        verifier, challenge = idp.pkce_pair()
        login = await self._authorize(state, challenge)
        page = await self.client.get(login)
        if page.status_code != 200:
            raise idp.IdpError(f"the login page answered {page.status_code}")
        form = idp.login_form(page.text)
        data = {**form.hidden, "username": idp.USERNAME, "password": idp.PASSWORD}
        resume = self._redirect(await self.client.post(form.action or login, data=data))
        if "/login" in resume:
            raise idp.IdpError(f"the sign-in was refused (back to {resume[:120]})")
        return resume, state, verifier

    async def redeem(self, location: str, state: str, verifier: str) -> bool:
        """The token request for the code in ``location``; whether a refresh token came."""
        code = idp.code_from_redirect(location, state=state, issuer=self.s.issuer)
        response = await self.client.post(
            self.s.token_path, headers={"Authorization": self.basic},
            data={"grant_type": "authorization_code", "code": code,
                  "redirect_uri": idp.REDIRECT_URI, "code_verifier": verifier})
        try:
            doc: Any = response.json()
        except ValueError:
            doc = response.text
        idp.check_token_response(response.status_code, doc, "jwt")
        if not isinstance(doc.get("id_token"), str):
            raise idp.IdpError("no id_token for scope openid")
        return "refresh_token" in doc

    async def first_flow(self) -> None:
        """Sign in and finish that first authorization request (not measured)."""
        resume, state, verifier = await self.sign_in()
        location = self._redirect(await self.client.get(resume))
        await self.redeem(location, state, verifier)

    async def flow(self) -> bool:
        state = idp.new_state()
        verifier, challenge = idp.pkce_pair()
        location = await self._authorize(state, challenge)
        return await self.redeem(location, state, verifier)

    async def fresh_sign_in(self) -> None:
        self.client.cookies.clear()
        await self.sign_in()

    async def close(self) -> None:
        await self.client.aclose()


async def run_browsers(s: FlowSettings) -> dict[str, Any]:
    """Set the browsers up, run them for warm-up + duration; the numbers."""
    browsers = [_Browser(s) for _ in range(s.browsers)]
    try:
        if s.mode == "flows":
            await asyncio.gather(*(b.first_flow() for b in browsers))
        tally = _Tally()
        start = time.perf_counter()
        tally.measure_from = start + s.warmup
        tally.until = tally.measure_from + s.duration
        marks: dict[str, float] = {}

        async def clock() -> None:
            await asyncio.sleep(max(0.0, tally.measure_from - time.perf_counter()))
            marks["driver0"] = time.process_time()
            if s.worker_pid is not None:
                marks["worker0"] = cpu_seconds(s.worker_pid)
            await asyncio.sleep(max(0.0, tally.until - time.perf_counter()))
            marks["driver1"] = time.process_time()
            if s.worker_pid is not None:
                marks["worker1"] = cpu_seconds(s.worker_pid)

        async def loop(browser: _Browser) -> None:
            while (began := time.perf_counter()) < tally.until:
                try:
                    if s.mode == "flows":
                        tally.refresh_tokens += await browser.flow()
                    else:
                        await browser.fresh_sign_in()
                except (idp.IdpError, httpx.HTTPError, KeyError) as exc:
                    tally.failed(time.perf_counter(), exc)
                    continue
                tally.spans.append((began, time.perf_counter()))

        await asyncio.gather(clock(), *(loop(b) for b in browsers))
    finally:
        await asyncio.gather(*(b.close() for b in browsers))
    return result_of(s, tally.spans, tally.measure_from, tally.errors, tally.samples, marks,
                     tally.refresh_tokens)


def result_of(s: FlowSettings, spans: Sequence[tuple[float, float]], measure_from: float,
              errors: int, samples: list[str], marks: dict[str, float],
              refresh_tokens: int = 0) -> dict[str, Any]:
    """One run's JSON: operations/s over the measured window (:func:`window_ops`), the
    latency of the operations that finished in it, the CPU per operation."""
    until = measure_from + s.duration
    ops = window_ops(spans, measure_from, until)
    latencies = [f - b for b, f in spans if measure_from <= f <= until]
    out: dict[str, Any] = {
        "mode": s.mode, "browsers": s.browsers, "ops": round(ops, 2),
        "completed": len(latencies), "seconds": s.duration,
        "rate": round(ops / s.duration, 2) if s.duration > 0 else 0.0,
        "latency": summarize(latencies) if latencies else {},
        "errors": errors, "error_samples": samples,
    }
    if "driver1" in marks:
        driver = marks["driver1"] - marks["driver0"]
        out["driver_cpu_s"] = round(driver, 3)
        out["driver_busy"] = round(driver / s.duration, 3) if s.duration > 0 else None
    if "worker1" in marks:
        worker = marks["worker1"] - marks["worker0"]
        out["worker_cpu_s"] = round(worker, 3)
        out["cpu_us_per_op"] = round(worker / ops * 1e6, 1) if ops else None
    if s.mode == "flows":
        out["refresh_tokens"] = refresh_tokens
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=("flows", "signin"), required=True)
    parser.add_argument("--browsers", type=int, default=16)
    parser.add_argument("--duration", type=float, default=7.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--authorize-path", default="/oauth2/authorize")
    parser.add_argument("--token-path", default="/oauth2/token")
    parser.add_argument("--worker-pid", type=int, default=None)
    args = parser.parse_args(argv)
    settings = FlowSettings(port=args.port, mode=args.mode, browsers=max(1, args.browsers),
                            duration=args.duration, warmup=args.warmup,
                            authorize_path=args.authorize_path, token_path=args.token_path,
                            worker_pid=args.worker_pid)
    print(json.dumps(uvloop.run(run_browsers(settings))))


if __name__ == "__main__":
    main()
