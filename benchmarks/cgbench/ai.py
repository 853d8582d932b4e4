"""Generated configuration for the AI gateway scenarios, and their goals.

One campusgate instance serves all three, in front of one fake provider process
(``tests/ai/fakes/fake_provider.py``: the same server the end-to-end tests use,
answering canned OpenAI and Anthropic answers), pinned to the load CPU like the
nginx origin:

- ``ai-openai``: an OpenAI chat completion (not streamed) with a consumer's key
  (``key-auth``; ``Authorization: Bearer``, as the SDKs send it), model
  ``bench-openai`` -> the fake's OpenAI API; usage and cost accounted.  Compared
  with the same instance's plain route ``/plain`` proxying the very same POST to the
  very same fake (the ``ai-plain`` reference, measured in the same run).
  Goal: >= 0.5x.
- ``ai-anthropic``: the same OpenAI request for ``bench-anthropic``, translated to
  Anthropic's Messages API and its answer back.  Goal: >= 0.4x of the same reference.
- ``ai-stream-ttfb``: streamed completions at a moderate fixed rate
  (``cgbench/ttfb.py``), straight to the fake and through campusgate; time to the
  first byte of the answer and to the first event.  Goal: campusgate adds < 1 ms to
  the median time to first byte.

Everything here is a pure function of its arguments, so the generated files can be
tested without starting anything.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cgbench.configs import NO_ACCESS_LOG, lua_string

__all__ = ["AI_SCENARIOS", "API_KEY", "FAKE_PROVIDER", "GOALS", "MODELS", "PLAIN_PREFIX",
           "TTFB_GOAL_MS", "ai_yaml", "chat_body", "fake_argv", "key_header", "post_lua"]

AI_SCENARIOS = ("ai-openai", "ai-anthropic", "ai-stream-ttfb")
#: Throughput goals as a fraction of the plain route's throughput (same instance, run).
GOALS = {"ai-openai": 0.5, "ai-anthropic": 0.4}
#: The median time to first byte campusgate may add to a direct streamed call.
TTFB_GOAL_MS = 1.0
#: The model each scenario asks for.
MODELS = {"ai-openai": "bench-openai", "ai-anthropic": "bench-anthropic",
          "ai-stream-ttfb": "bench-openai"}
API_KEY = "cgbench-ai-key-8f14e45fceea167a5a36dedd4bea2543"
PROVIDER_KEY = "sk-cgbench-fake"
#: The plain route's prefix (stripped: ``/plain/v1/...`` reaches the fake as ``/v1/...``).
PLAIN_PREFIX = "/plain"
#: The fake provider, run as a script (its imports are its own directory's).
FAKE_PROVIDER = Path(__file__).resolve().parents[2] / "tests" / "ai" / "fakes" / "fake_provider.py"


def fake_argv(port: int) -> list[str]:
    return [sys.executable, str(FAKE_PROVIDER), "--port", str(port)]


def chat_body(model: str, *, stream: bool = False) -> str:
    """A short chat request, as a client sends it (compact JSON)."""
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "system", "content": "You are a helpful teaching assistant."},
                     {"role": "user", "content": "Explain photosynthesis in one line."}],
        "max_tokens": 64, "temperature": 0.2}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body, separators=(",", ":"))


def ai_yaml(*, proxy_port: int, admin_port: int, fake_port: int, storage: Path) -> str:
    """campusgate with the AI gateway (two providers on the fake, key-auth) and a plain
    route proxying ``/plain`` to the same fake."""
    fake = f"http://127.0.0.1:{fake_port}"
    doc = {
        "listeners": {"proxy": {"address": f"127.0.0.1:{proxy_port}"},
                      "admin": {"address": f"127.0.0.1:{admin_port}"}},
        "storage": f"sqlite:///{storage}",
        "state": "memory",
        "observe": NO_ACCESS_LOG,
        "services": [{"name": "plain", "url": fake, "routes": [
            {"name": "plain", "paths": [PLAIN_PREFIX], "strip_path": True}]}],
        "consumers": [{"name": "bench-app",
                       "credentials": [{"type": "key-auth", "key": API_KEY}]}],
        "ai": {
            "providers": [
                {"name": "fake-openai", "type": "openai", "base_url": f"{fake}/v1",
                 "api_key": PROVIDER_KEY},
                {"name": "fake-anthropic", "type": "anthropic", "base_url": fake,
                 "api_key": PROVIDER_KEY}],
            "models": [
                {"name": "bench-openai",
                 "targets": [{"provider": "fake-openai", "model": "gpt-4o-mini"}]},
                {"name": "bench-anthropic",
                 "targets": [{"provider": "fake-anthropic", "model": "claude-3-5-haiku"}]}],
            "plugins": [{"name": "key-auth", "config": {"key_names": ["authorization"]}}],
        },
    }
    return json.dumps(doc, indent=1) + "\n"


def key_header(api_key: str) -> tuple[str, str]:
    """The consumer key as OpenAI's SDKs send it (key-auth reads it after ``Bearer``)."""
    return "Authorization", f"Bearer {api_key}"


def post_lua(body: str, api_key: str | None) -> str:
    """A wrk script POSTing ``body`` as JSON (with the consumer key if given); wrk
    formats the request once, so the load side pays what it pays for a GET."""
    key = ""
    if api_key:
        name, value = key_header(api_key)
        key = f'wrk.headers["{name}"] = {lua_string(value)}\n'
    return ("-- generated by benchmarks/cgbench/ai.py\n"
            'wrk.method = "POST"\n'
            f"wrk.body = {lua_string(body)}\n"
            'wrk.headers["Content-Type"] = "application/json"\n' + key)
