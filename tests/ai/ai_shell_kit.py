"""Helpers of the AI request path's tests (``from ai_shell_kit import ...``): a minimal
OpenAI-wire server whose answers a test scripts, and a gateway on 127.0.0.1 serving
an ``ai:`` section through the real proxy (compile_snapshot, Gateway, ClientConnection)
with the ``builtin://ai`` backend."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from campusgate.ai.gateway.backend import AiBackend
from campusgate.ai.gateway.runtime import AiRuntime
from campusgate.config.model import Entities, Limits
from campusgate.plugins.registry import default_resources
from campusgate.proxy.gateway import Gateway
from campusgate.proxy.http1 import ClientConnection, ListenerState
from campusgate.proxy.snapshot import compile_snapshot

__all__ = ["AiGateway", "FakeProvider", "Seen", "completion", "sse", "start_ai_gateway"]

#: What a scripted handler returns: status, headers, and the body's pieces (each
#: written then flushed; a float is a pause in seconds; None cuts the connection).
Answer = tuple[int, dict[str, str], list[bytes | float | None]]
Handler = Callable[["Seen"], Answer | Awaitable[Answer]]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def completion(text: str, model: str = "gpt-4o-mini", prompt: int = 5,
               completion_tokens: int = 2) -> bytes:
    return json.dumps({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
                  "total_tokens": prompt + completion_tokens}}).encode()


def sse(*texts: str, model: str = "gpt-4o-mini", usage: bool = True,
        done: bool = True) -> list[bytes]:
    """An OpenAI chat stream's events, one piece per event."""
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
            "model": model}
    events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant",
                                                          "content": ""}}]}]
    events += [{**base, "choices": [{"index": 0, "delta": {"content": t}}]} for t in texts]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage:
        events.append({**base, "choices": [], "usage": {
            "prompt_tokens": 5, "completion_tokens": len(texts), "total_tokens": 5 + len(texts)}})
    out = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events]
    if done:
        out.append(b"data: [DONE]\n\n")
    return out


@dataclass(eq=False)
class FakeProvider:
    """An HTTP/1.1 server speaking just enough of OpenAI's wire (keep-alive, chunked
    answers); every request is recorded in ``seen``."""

    handler: Handler
    seen: list[Seen] = field(default_factory=list)
    server: asyncio.Server | None = None
    #: Set when a connection was closed by the client before its answer ended.
    aborted: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> FakeProvider:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip()
                           for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                seen = Seen(method, path, headers, body)
                self.seen.append(seen)
                answer = self.handler(seen)
                if not isinstance(answer, tuple):
                    answer = await answer
                status, out_headers, pieces = answer
                lines = [f"HTTP/1.1 {status} X", "transfer-encoding: chunked",
                         *(f"{k}: {v}" for k, v in out_headers.items())]
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
                for piece in pieces:
                    if piece is None:
                        writer.close()
                        return
                    if isinstance(piece, float):
                        await writer.drain()
                        await asyncio.sleep(piece)
                        continue
                    writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            self.aborted.set()
        except asyncio.CancelledError:  # the test is over: the server closes
            pass
        finally:
            writer.close()


@dataclass(eq=False)
class AiGateway:
    server: asyncio.Server
    runtime: AiRuntime
    state: ListenerState

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        self.server.close()
        for conn in list(self.state.connections):
            conn.close()
        self.runtime.close()


async def start_ai_gateway(entities: dict[str, Any]) -> AiGateway:
    """Serve ``entities`` (with an ``ai:`` section) on 127.0.0.1."""
    loop = asyncio.get_running_loop()
    model = Entities.model_validate(entities)
    resources = default_resources(loop)
    runtime = AiRuntime(resources.keyring)
    runtime.update(model.ai)
    snap = compile_snapshot(1, model, [], loop=loop, resources=resources,
                            backends={"ai": AiBackend(runtime)})
    state = ListenerState(Gateway(lambda: snap), Limits())
    server = await loop.create_server(lambda: ClientConnection(state, loop), "127.0.0.1", 0)
    return AiGateway(server, runtime, state)
