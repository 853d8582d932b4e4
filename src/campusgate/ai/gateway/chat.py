"""One chat call, for any of the three chat APIs: made canonical, sent to the first
target that answers, and answered in the client's API -- whole, or as a stream
written piece by piece as the provider's pieces arrive (nothing is buffered).

The accounting seam: ``ctx.vars["ai"]`` holds the model name the client used, the
provider and its model that served it, the canonical usage, the cost in USD (a
decimal string; None when the price is unknown), the number of attempts and whether
it streamed.  A stream the client left, or that the provider cut, still records the
usage known so far (the decoder's).  The access-record writer (issue 7) reads it.

With ``ai.cache`` enabled, a whole call is looked up in the response cache
(``ai/cache.py``) after the budgets' check: a hit answers at once (``x-cache: hit``,
``cached: true``, the original usage, cost 0, no provider call) and charges the
budgets one request but no tokens or USD -- nothing was spent at a provider, yet the
request counts against request limits; a miss (``x-cache: miss``) is stored.
"""

from __future__ import annotations

from typing import Any

from campusgate.ai.api import anthropic_messages, responses
from campusgate.ai.budgets import applicable
from campusgate.ai.cache import cache_key, directives
from campusgate.ai.errors import ProviderError
from campusgate.ai.gateway.access import model_plan
from campusgate.ai.gateway.attempts import Attempt, first_answer
from campusgate.ai.gateway.replies import ApiShape, start_stream, write_json
from campusgate.ai.gateway.runtime import AiRuntime, AiState
from campusgate.ai.gateway.streams import ChunkEncoder, encoder_for
from campusgate.ai.types import ChatRequest, Json
from campusgate.config.ai import AiBudget
from campusgate.observe.tracing import traceparent_of
from campusgate.proxy.backends import ResponseHook
from campusgate.proxy.context import HeaderList, RequestContext
from campusgate.proxy.http1 import ClientConnection
from campusgate.proxy.request import Request

__all__ = ["account", "budgets_of", "model_name", "serve_chat"]


def model_name(request: dict[str, Any]) -> str:
    model = request.get("model")
    if not isinstance(model, str) or not model:
        raise ProviderError("bad_request", "the request names no model ('model' must be "
                            "a string)", status=400)
    return model


def _canonical(shape: ApiShape, request: dict[str, Any]) -> ChatRequest:
    if shape == "anthropic":
        return anthropic_messages.to_chat(request)
    if shape == "responses":
        return responses.to_chat(request)
    if not isinstance(request.get("messages"), list):
        raise ProviderError("bad_request", "'messages' must be a list", status=400)
    return request


def account(ctx: RequestContext, state: AiState, attempt: Attempt,
            usage: Json | None) -> None:
    """Fill ``ctx.vars["ai"]`` for the target that served the call."""
    info = ctx.vars["ai"]
    target = attempt.target
    info["provider"] = target.provider
    info["provider_model"] = target.deployment.model
    info["attempts"] = attempt.number
    info["usage"] = usage
    price = None if usage is None else state.price(target)
    info["cost"] = None if price is None or usage is None else str(price.of(usage))


async def serve_chat(runtime: AiRuntime, state: AiState, conn: ClientConnection,
                     req: Request, ctx: RequestContext, on_response: ResponseHook,
                     shape: ApiShape, request: dict[str, Any], now: float) -> None:
    alias = model_name(request)
    chat = _canonical(shape, request)
    stream = bool(chat.get("stream"))
    ctx.vars["ai"] = {"model": alias, "provider": None, "provider_model": None,
                      "usage": None, "cost": None, "attempts": 0, "stream": stream,
                      "cached": False}
    if state.redactor is not None and state.redactor.applies_to(alias):  # ai.redaction
        ctx.vars["ai"]["redactions"] = dict(state.redactor.redact_chat(chat))
    encoder = encoder_for(shape, request, chat) if stream else None
    plan = model_plan(state, alias, ctx.consumer, now)
    budgets = budgets_of(state, ctx, alias)
    if budgets:
        await runtime.budgets.check(state.config, budgets)
    caching = state.config.cache
    key: str | None = None
    write = False
    if caching.enabled and encoder is None:
        read, write = directives(ctx.header(b"cache-control"))
        consumer = None if ctx.consumer is None else ctx.consumer.name
        key = cache_key(alias, chat, consumer, caching.scope)
        hit = await runtime.cache.get(key) if read else None
        if hit is not None:
            ctx.vars["ai"].update(usage=hit.get("usage"), cost="0", cached=True)
            _answer(conn, req, ctx, on_response, shape, request, hit, alias, b"hit")
            await runtime.budgets.charge(budgets, None, None)  # one request, no tokens
            return
    attempt = await first_answer(state, runtime.client, plan,
                                 lambda translator, dep: translator.chat_request(chat, dep),
                                 traceparent_of(ctx.trace))
    try:
        if encoder is None:
            body = attempt.answer.body_now()  # a short answer came with its head
            response = (await _whole(state, ctx, attempt) if body is None
                        else _taken(state, ctx, attempt, body))
            _answer(conn, req, ctx, on_response, shape, request, response, alias,
                    None if key is None else b"miss")
            if key is not None and write:
                await runtime.cache.put(caching, key, response)
        else:
            await _stream(state, conn, req, ctx, on_response, attempt, encoder)
    finally:  # whole, streamed, or left: what was used is charged
        if budgets:
            info = ctx.vars["ai"]
            await runtime.budgets.charge(budgets, info["usage"], info["cost"])


def budgets_of(state: AiState, ctx: RequestContext, alias: str) -> list[AiBudget]:
    """The budgets that apply to this call (``ai/budgets.py``)."""
    if not state.config.budgets:
        return []
    consumer = ctx.consumer
    return applicable(state.config.budgets, None if consumer is None else consumer.name,
                      () if consumer is None else consumer.groups, alias)


async def _whole(state: AiState, ctx: RequestContext, attempt: Attempt) -> Json:
    """The provider's whole answer, read as it arrives, canonical, accounted."""
    try:
        body = await attempt.answer.read()
    except ProviderError as exc:
        attempt.done(exc)
        exc.provider = exc.provider or attempt.target.provider
        raise
    return _taken(state, ctx, attempt, body)


def _taken(state: AiState, ctx: RequestContext, attempt: Attempt, body: bytes) -> Json:
    """The provider's whole answer ``body``, canonical, accounted."""
    answer = attempt.answer
    try:
        response = attempt.translator.chat_response(answer.status, answer.headers, body,
                                                    attempt.target.deployment)
    except ProviderError as exc:
        attempt.done(exc)
        exc.provider = exc.provider or attempt.target.provider
        raise
    attempt.done()
    account(ctx, state, attempt, response.get("usage"))
    return response


def _answer(conn: ClientConnection, req: Request, ctx: RequestContext,
            on_response: ResponseHook, shape: ApiShape, request: dict[str, Any],
            response: Json, alias: str, cache: bytes | None) -> None:
    """Write a canonical answer in the client's API (``x-cache`` when caching)."""
    response["model"] = alias
    if shape == "anthropic":
        payload = anthropic_messages.from_chat(response, request)
    elif shape == "responses":
        payload = responses.from_chat(response, request)
    else:
        payload = response
    extra: HeaderList = [] if cache is None else [(b"x-cache", cache)]
    write_json(conn, req, ctx, on_response, 200, payload, extra)


async def _stream(state: AiState, conn: ClientConnection, req: Request,
                  ctx: RequestContext, on_response: ResponseHook, attempt: Attempt,
                  encoder: ChunkEncoder) -> None:
    answer = attempt.answer
    decoder = attempt.translator.chat_stream(attempt.target.deployment)
    start_stream(conn, req, ctx, on_response)
    failure: ProviderError | None = None
    req.on_disconnect = answer.close  # a client gone while the provider thinks
    try:
        async for data in answer.chunks():
            out = b"".join(encoder.chunk(chunk) for chunk in decoder.feed(data))
            if out:
                conn.write_body(out)
                if conn.closed or req.disconnected:
                    answer.close()  # the client left: stop the provider's work
                    return
                await conn.drain()
        out = b"".join(encoder.chunk(chunk) for chunk in decoder.finish())
        conn.write_body(out + encoder.end())
        conn.end_body()
    except ProviderError as exc:
        answer.close()
        if conn.closed or req.disconnected:
            return  # the provider call was aborted because the client left
        failure = exc
        exc.provider = exc.provider or attempt.target.provider
        conn.write_body(encoder.fail(exc))
        conn.end_body()
    except ConnectionError:  # the client stopped reading, or went away
        answer.close()
    finally:
        req.on_disconnect = None
        answer.close()  # no-op after a complete answer (already back in its pool)
        attempt.done(failure)
        account(ctx, state, attempt, decoder.usage)
