"""The prompts' endpoints under ``ai.prompts_path`` (default ``/prompts``), on the
``builtin://ai`` service:

- ``POST /prompts/{name}`` and ``POST /prompts/{name}/versions/{n}``: render the
  version (:mod:`campusgate.ai.prompts`) and serve it as a Chat Completions call
  (:func:`~.chat.serve_chat`: budgets, fallbacks, cache, accounting, streaming);
- ``GET /prompts``, ``GET /prompts/{name}``: the prompts this consumer may use;
- ``GET /prompts/openapi.json``: their OpenAPI 3.1 document.

A prompt exists for a consumer when its served version's model does (``access``):
otherwise it is a 404, as for a model.  Answers carry ``x-prompt-version``, and
``ctx.vars["prompt"]`` names the prompt and version for the access record.
"""

from __future__ import annotations

import asyncio

from campusgate.ai.errors import ProviderError
from campusgate.ai.gateway.access import visible_models
from campusgate.ai.gateway.body import read_json_body
from campusgate.ai.gateway.chat import serve_chat
from campusgate.ai.gateway.replies import write_json
from campusgate.ai.gateway.runtime import AiRuntime, AiState
from campusgate.ai.prompts import parse_call
from campusgate.ai.prompts_openapi import KeyAuth, Visible, describe, openapi_document
from campusgate.config.ai_prompts import AiPrompt, AiPromptVersion
from campusgate.plugins.key_auth import KeyAuthConfig
from campusgate.proxy.backends import ResponseHook
from campusgate.proxy.bodies import BodyHooks
from campusgate.proxy.context import HeaderList, RequestContext
from campusgate.proxy.http1 import ClientConnection
from campusgate.proxy.request import Request

__all__ = ["prompts_at", "serve_prompts"]

OPENAPI = "openapi.json"


def prompts_at(state: AiState | None, path: str) -> str | None:
    """The part of ``path`` below ``ai.prompts_path`` (``""``, ``/name``...), or None
    when it is not a prompts path (or no prompt is configured)."""
    if state is None or not state.config.prompts:
        return None
    base = state.config.prompts_path
    if path == base or path.startswith(base + "/"):
        return path[len(base):].rstrip("/")
    return None


def _visible(state: AiState, ctx: RequestContext) -> Visible:
    models = set(visible_models(state, ctx.consumer))
    found: Visible = []
    for prompt in state.config.prompts:
        versions = [v for v in prompt.versions if v.model in models]
        if prompt.version() in versions:
            found.append((prompt, versions))
    return found


def _not_found(what: str) -> ProviderError:
    return ProviderError("not_found", f"{what} does not exist or you do not have access "
                         "to it.", status=404, code="prompt_not_found")


def _method(ctx: RequestContext, method: str) -> None:
    if ctx.method != method and not (method == "GET" and ctx.method == "HEAD"):
        raise ProviderError("bad_request", f"{ctx.method} is not allowed on {ctx.path}: "
                            f"use {method}", status=405, code="method_not_allowed")


def _key_auth(state: AiState) -> KeyAuth | None:
    spec = next((p for p in state.config.plugins if p.name == "key-auth"), None)
    if spec is None:
        return None
    config = KeyAuthConfig.model_validate(spec.config or {})
    return tuple(config.key_names), config.key_in_header, config.key_in_query


async def serve_prompts(runtime: AiRuntime, conn: ClientConnection, req: Request,
                        ctx: RequestContext, on_response: ResponseHook,
                        hooks: BodyHooks | None, rest: str) -> None:
    """Answer a request at ``{prompts_path}{rest}`` (errors raise ProviderError)."""
    state = runtime.state
    if state is None:
        raise ProviderError("overloaded", "the AI gateway is not configured", status=503)
    parts = rest.split("/")[1:]
    visible = _visible(state, ctx)
    if not parts or parts == [OPENAPI]:
        _method(ctx, "GET")
        payload = (openapi_document(visible, state.config.prompts_path, _key_auth(state))
                   if parts else {"object": "list", "data": [describe(p, v) for p, v in visible]})
        write_json(conn, req, ctx, on_response, 200, payload)
        return
    if len(parts) not in (1, 3) or (len(parts) == 3 and parts[1] != "versions"):
        raise ProviderError("not_found", f"no prompts endpoint at {ctx.path}", status=404,
                            code="unknown_url")
    found = next(((p, v) for p, v in visible if p.name == parts[0]), None)
    if found is None:
        raise _not_found(f"The prompt {parts[0]!r}")
    prompt, versions = found
    pinned = _number(parts[2]) if len(parts) == 3 else None
    if ctx.method in ("GET", "HEAD") and pinned is None:
        write_json(conn, req, ctx, on_response, 200, describe(prompt, versions))
        return
    _method(ctx, "POST")
    await _call(runtime, state, conn, req, ctx, on_response, hooks, prompt, versions, pinned)


def _number(text: str) -> int:
    if not text.isdigit() or len(text) > 9:
        raise ProviderError("bad_request", f"version {text!r} is not a number", status=400)
    return int(text)


async def _call(runtime: AiRuntime, state: AiState, conn: ClientConnection, req: Request,
                ctx: RequestContext, on_response: ResponseHook, hooks: BodyHooks | None,
                prompt: AiPrompt, versions: list[AiPromptVersion], pinned: int | None) -> None:
    body = await read_json_body(req, ctx, hooks, state.config.max_request_bytes)
    call = parse_call(body)
    if pinned is not None and call.version not in (None, pinned):
        raise ProviderError("bad_request", f"the path names version {pinned}, the body "
                            f"version {call.version}", status=400)
    number = pinned or call.version
    version = prompt.version(number)
    if version is None or version not in versions:
        raise _not_found(f"Version {number} of the prompt {prompt.name!r}")
    request = call.request(version)
    ctx.vars["prompt"] = {"name": prompt.name, "version": version.version}
    tag = b"%d" % version.version

    def tagged(ctx: RequestContext, status: int, headers: HeaderList) -> None:
        headers.append((b"x-prompt-version", tag))
        on_response(ctx, status, headers)

    await serve_chat(runtime, state, conn, req, ctx, tagged, "openai", request,
                     asyncio.get_running_loop().time())
