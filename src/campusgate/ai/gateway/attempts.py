"""Walking a plan of targets until one answers: the retry and fallback loop.

Each attempt asks the target's translator for the upstream request, sends it over the
worker's :class:`~campusgate.ai.client.ProviderClient` and waits for the head.  A 2xx
head ends the walk: the caller reads the body or the stream and then calls
:meth:`Attempt.done`, so the router counts the call in flight until it has really
ended (``least-busy``) and learns its time to the first byte (``lowest-latency``).
A retryable :class:`~campusgate.ai.errors.ProviderError` (429, 5xx, timeouts, a
context-length error another deployment may not have) moves to the next target, up
to ``ai.retries`` further attempts, and so does a 401/403 (the target's key was
refused: the router disables it; if no target is left the client gets a 502, as the
key is campusgate's, not the client's); any other error is the answer.  Every outcome is
reported to the router (a 401 disables the target).  Nothing has been sent to the
client while this runs, so falling back is always safe here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from campusgate.ai.client import ProviderAnswer, ProviderClient
from campusgate.ai.errors import ProviderError
from campusgate.ai.gateway.runtime import AiState
from campusgate.ai.providers.base import Deployment, Translator, UpstreamRequest
from campusgate.ai.routing import Target

__all__ = ["Attempt", "first_answer"]

#: Largest error body read from a provider.
ERROR_BODY_LIMIT = 1024 * 1024
BuildRequest = Callable[[Translator, Deployment], UpstreamRequest]


@dataclass(eq=False, slots=True)
class Attempt:
    """The target that answered with a 2xx head, and its answer."""

    state: AiState
    target: Target
    translator: Translator
    answer: ProviderAnswer
    #: How many targets were tried, this one included.
    number: int
    latency: float
    _reported: bool = False

    def done(self, error: ProviderError | None = None) -> None:
        """The call ended (``error`` if it failed mid-way): tell the router, once."""
        if self._reported:
            return
        self._reported = True
        # the pool's loop, not asyncio.get_running_loop(): in Python 3.11 that costs a
        # getpid() system call each time
        self.state.router.report(self.target, self.answer.pool.loop.time(),
                                 latency=self.latency, error=error)


def _named(error: ProviderError, target: Target) -> ProviderError:
    if not error.provider:
        error.provider = target.provider
    return error


async def first_answer(state: AiState, client: ProviderClient, plan: list[Target],
                       build: BuildRequest, traceparent: str | None = None) -> Attempt:
    """The first target of ``plan`` to answer 2xx; else the last error, raised.
    ``traceparent``: sent to the provider (the gateway's span as its parent)."""
    loop = client.loop
    router = state.router
    last: ProviderError | None = None
    for number, target in enumerate(plan[: state.config.retries + 1], start=1):
        translator = state.translator_of(target)
        upstream = build(translator, target.deployment)  # bad_request: the client's fault
        timeouts = state.providers[target.provider].timeouts
        router.started(target)
        began = loop.time()
        try:
            answer = await client.call(upstream, connect_timeout=timeouts.connect,
                                       read_timeout=timeouts.read, traceparent=traceparent)
            if not 200 <= answer.status < 300:
                body = await answer.read(ERROR_BODY_LIMIT)
                raise translator.error(answer.status, answer.headers, body)
        except ProviderError as exc:
            error = _named(exc, target)
            router.report(target, loop.time(), error=error)
            if error.kind in ("auth", "permission"):
                # the gateway's key for this target was refused: not the client's fault
                last = ProviderError("server", f"the provider refused campusgate's "
                                     f"credentials: {error.message}", error.status,
                                     error.provider, code=error.code)
                continue
            if not error.retryable:
                raise error from None
            last = error
            continue
        return Attempt(state, target, translator, answer, number, loop.time() - began)
    assert last is not None
    raise last
