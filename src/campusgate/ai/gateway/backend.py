"""The ``builtin://ai`` service: a :class:`~campusgate.proxy.backends.Backend` that
answers the AI endpoints in-process (no ASGI layer on the request path).

Endpoints, by the end of the request path (under ``ai.path``, default ``/v1``):
``POST /chat/completions`` (OpenAI), ``POST /messages`` (Anthropic Messages),
``POST /responses`` (OpenAI Responses), ``POST /embeddings``, ``GET /models`` and
``GET /models/{name}`` (the models this consumer may use).  Every error is answered
in the endpoint's API shape (:mod:`.replies`); a failure after a stream began ends
it with an error event (:mod:`.chat`); a client that went away gets nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from campusgate.ai.errors import ProviderError
from campusgate.ai.gateway.access import model_plan, not_found, visible_models
from campusgate.ai.gateway.attempts import first_answer
from campusgate.ai.gateway.body import read_json_body
from campusgate.ai.gateway.chat import account, budgets_of, model_name, serve_chat
from campusgate.ai.gateway.prompts import prompts_at, serve_prompts
from campusgate.ai.gateway.replies import ApiShape, write_error, write_json
from campusgate.ai.gateway.runtime import AiRuntime, AiState
from campusgate.observe.capture import ai_error
from campusgate.observe.tracing import traceparent_of
from campusgate.proxy.backends import ResponseHook
from campusgate.proxy.bodies import BodyHooks
from campusgate.proxy.context import RequestContext, RouteOptions
from campusgate.proxy.http1 import ClientConnection
from campusgate.proxy.request import ClientDisconnected, Request

__all__ = ["AiBackend", "endpoint_of"]

log = logging.getLogger("campusgate.ai")

#: Path ending -> (the method it takes, the client API it speaks).
ENDPOINTS: dict[str, tuple[str, ApiShape]] = {
    "/chat/completions": ("POST", "openai"),
    "/embeddings": ("POST", "openai"),
    "/messages": ("POST", "anthropic"),
    "/responses": ("POST", "responses"),
    "/models": ("GET", "openai"),
}


def endpoint_of(path: str) -> tuple[str, str | None]:
    """``(endpoint, model id)`` for a request path: the endpoint is a key of
    :data:`ENDPOINTS` or ``""``; the id is set for ``/models/{id}``."""
    path = path.rstrip("/")
    for ending in ENDPOINTS:
        if path.endswith(ending):
            return ending, None
    _, found, name = path.rpartition("/models/")
    if found and name and "/" not in name:
        return "/models", name
    return "", None


@dataclass(eq=False)
class AiBackend:
    runtime: AiRuntime

    async def forward(self, conn: ClientConnection, req: Request, ctx: RequestContext,
                      route: RouteOptions, matched_path: str, on_response: ResponseHook,
                      hooks: BodyHooks | None = None) -> None:
        state = self.runtime.state
        prompts = prompts_at(state, ctx.path)
        endpoint, model_id = endpoint_of(ctx.path) if prompts is None else ("", None)
        shape: ApiShape = ENDPOINTS[endpoint][1] if endpoint else "openai"
        try:
            if prompts is not None:  # ai.prompts_path: prompts as APIs (.prompts)
                await serve_prompts(self.runtime, conn, req, ctx, on_response, hooks, prompts)
                return
            # The endpoint is served in this coroutine, not one more: every coroutine
            # frame between the task and the provider's answer is resumed on each wake.
            if state is None:
                raise ProviderError("overloaded", "the AI gateway is not configured "
                                    "(no ai: section)", status=503)
            if not endpoint:
                raise ProviderError("not_found", f"no AI endpoint at {ctx.path}",
                                    status=404, code="unknown_url")
            method = ENDPOINTS[endpoint][0]
            if ctx.method != method and not (method == "GET" and ctx.method == "HEAD"):
                raise ProviderError("bad_request", f"{ctx.method} is not allowed on "
                                    f"{ctx.path}: use {method}", status=405,
                                    code="method_not_allowed")
            if endpoint == "/models":
                self._models(conn, req, ctx, on_response, state, model_id)
                return
            request = await read_json_body(req, ctx, hooks, state.config.max_request_bytes)
            ctx.upstream_started = time.monotonic()
            now = conn.loop.time()  # not asyncio's get_running_loop(): a getpid() in 3.11
            if endpoint == "/embeddings":
                await self._embeddings(conn, req, ctx, on_response, state, request, now)
                return
            await serve_chat(self.runtime, state, conn, req, ctx, on_response, shape,
                             request, now)
        except ProviderError as exc:
            ctx.error = ai_error(exc.client_status())
            if conn.closed or req.disconnected:
                return
            if conn.response_started:
                conn.abort_response()
                return
            if exc.client_status() >= 500:
                log.warning("%s %s -> %d: %s", ctx.method, ctx.path, exc.client_status(), exc)
            write_error(conn, req, ctx, on_response, exc, shape)
        except ClientDisconnected:
            return
        finally:  # the access record's upstream latency: the provider's part
            if ctx.upstream_started:
                ctx.upstream_ended = time.monotonic()

    def _models(self, conn: ClientConnection, req: Request, ctx: RequestContext,
                on_response: ResponseHook, state: AiState, model_id: str | None) -> None:
        names = visible_models(state, ctx.consumer)
        objects = [{"id": name, "object": "model", "created": 0, "owned_by": "campusgate"}
                   for name in names]
        if model_id is None:
            write_json(conn, req, ctx, on_response, 200, {"object": "list", "data": objects})
            return
        found = next((o for o in objects if o["id"] == model_id), None)
        if found is None:
            raise not_found(model_id)
        write_json(conn, req, ctx, on_response, 200, found)

    async def _embeddings(self, conn: ClientConnection, req: Request, ctx: RequestContext,
                          on_response: ResponseHook, state: AiState,
                          request: dict[str, Any], now: float) -> None:
        alias = model_name(request)
        ctx.vars["ai"] = {"model": alias, "provider": None, "provider_model": None,
                          "usage": None, "cost": None, "attempts": 0, "stream": False}
        if state.redactor is not None and state.redactor.applies_to(alias):  # ai.redaction
            ctx.vars["ai"]["redactions"] = dict(state.redactor.redact_embeddings(request))
        plan = model_plan(state, alias, ctx.consumer, now)
        budgets = budgets_of(state, ctx, alias)
        await self.runtime.budgets.check(state.config, budgets)
        attempt = await first_answer(
            state, self.runtime.client, plan,
            lambda translator, dep: translator.embeddings_request(request, dep),
            traceparent_of(ctx.trace))
        answer = attempt.answer
        try:
            body = await answer.read()
            result = attempt.translator.embeddings_response(
                answer.status, answer.headers, body, attempt.target.deployment)
        except ProviderError as exc:
            attempt.done(exc)
            await self.runtime.budgets.charge(budgets, None, None)
            raise
        attempt.done()
        account(ctx, state, attempt, result.get("usage"))
        await self.runtime.budgets.charge(budgets, result.get("usage"),
                                          ctx.vars["ai"]["cost"])
        result["model"] = alias
        write_json(conn, req, ctx, on_response, 200, result)
