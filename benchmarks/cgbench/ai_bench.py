"""The AI gateway scenarios as run: the fake provider, one campusgate, the load.

The fake provider (``tests/ai/fakes/fake_provider.py``) runs as a process pinned to
the load CPU, like the nginx origin; campusgate is pinned to the proxy CPU.  Before
any load every path is checked with one real request (the key is refused without a
credential, each model answers the fake's text, the plain route reaches the fake):
a misconfigured instance would otherwise measure error pages.  ``cgbench/ai.py``
describes the scenarios and generates the files.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cgbench import ai
from cgbench.procs import StartError, free_port, http_request

if TYPE_CHECKING:
    from cgbench.bench import Bench

__all__ = ["TTFB_RATE", "AiBench"]

BENCH_DIR = Path(__file__).resolve().parents[1]
CHAT = "/v1/chat/completions"
#: Streams started per second in ``ai-stream-ttfb``: a moderate load for one worker.
TTFB_RATE = 200.0


class AiBench:
    """Runs ``ai-openai``, ``ai-anthropic`` and ``ai-stream-ttfb`` for one :class:`Bench`."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.fake_port = 0
        self.port = 0

    def run(self, names: list[str]) -> None:
        b = self.bench
        self.fake_port = free_port()
        b.procs.start("fake-provider", ai.fake_argv(self.fake_port), cpus=b.settings.load_cpu)
        b.procs.wait_http("fake-provider", self.fake_port, "/v1/models", timeout=15)
        name = "campusgate-ai"
        self.port, admin = free_port(), free_port()
        text = ai.ai_yaml(proxy_port=self.port, admin_port=admin, fake_port=self.fake_port,
                          storage=b.home(name) / "campusgate.db")
        # key-auth is on the AI endpoints: without a key they refuse.
        pid = b.launch_campusgate(name, text, self.port, admin, "/v1/models", ok=(401,))
        self.check(name)
        throughput = [n for n in names if n in ai.GOALS]
        if throughput:
            b.scenarios["ai-plain"] = self.post_load("ai-plain", ai.PLAIN_PREFIX + CHAT,
                                                     "gpt-4o-mini", None, pid)
            for scenario in throughput:
                b.scenarios[scenario] = {
                    "model": ai.MODELS[scenario],
                    "cell": self.post_load(scenario, CHAT, ai.MODELS[scenario],
                                           ai.API_KEY, pid)}
        if "ai-stream-ttfb" in names:
            b.scenarios["ai-stream-ttfb"] = self.ttfb()
        b.procs.stop(name)
        b.procs.stop("fake-provider")

    def check(self, name: str) -> None:
        key = dict([ai.key_header(ai.API_KEY), ("Content-Type", "application/json")])
        probes = [(CHAT, "bench-openai", key, 200), (CHAT, "bench-anthropic", key, 200),
                  (CHAT, "bench-openai", {"Content-Type": "application/json"}, 401),
                  (ai.PLAIN_PREFIX + CHAT, "gpt-4o-mini", {}, 200)]
        for path, model, headers, expected in probes:
            status, body = http_request(self.port, "POST", path,
                                        ai.chat_body(model).encode(), headers)
            if status != expected or (expected == 200 and b"Hello from the fake" not in body):
                raise StartError(f"{name}: POST {path} ({model}) answered {status}, not "
                                 f"{expected}: {body[:300]!r}\n"
                                 + self.bench.procs.log_tail(name))

    def post_load(self, label: str, path: str, model: str, key: str | None,
                  pid: int) -> dict[str, Any]:
        script = self.bench.home("campusgate-ai") / f"{label}.lua"
        script.write_text(ai.post_lua(ai.chat_body(model), key))
        return self.bench.throughput(label, self.port, path, script=script, pid=pid)

    def ttfb(self) -> dict[str, Any]:
        """Streams straight to the fake and through campusgate, same rate, same body."""
        b = self.bench
        home = b.home("campusgate-ai")
        out: dict[str, Any] = {"rate": TTFB_RATE}
        for target, port, model, headers in (
                ("direct", self.fake_port, "gpt-4o-mini", []),
                ("campusgate", self.port, "bench-openai",
                 ["--header", ": ".join(ai.key_header(ai.API_KEY))])):
            body = home / f"stream-{target}.json"
            body.write_text(ai.chat_body(model, stream=True))
            argv = [sys.executable, "-m", "cgbench.ttfb", "--port", str(port), "--path", CHAT,
                    "--body-file", str(body), "--rate", str(TTFB_RATE),
                    "--duration", str(b.settings.latency_duration), *headers]
            if b.settings.load_cpu is not None:
                argv = ["taskset", "-c", b.settings.load_cpu, *argv]
            runs = []
            for _ in range(b.settings.latency_runs):
                done = subprocess.run(argv, capture_output=True, text=True, check=False,
                                      cwd=BENCH_DIR, timeout=b.settings.latency_duration + 60)
                if done.returncode != 0:
                    raise StartError(f"ttfb generator failed: {done.stderr.strip()[-2000:]}")
                runs.append(json.loads(done.stdout))
            ordered = sorted(runs, key=lambda r: float(r["first_byte"]["p50_ms"]))
            best = ordered[(len(ordered) - 1) // 2]
            out[target] = {"runs": runs, "median": best}
            b.say(f"ai-stream-ttfb/{target} at {TTFB_RATE:.0f}/s: first byte p50 "
                  f"{best['first_byte']['p50_ms']:.3f} ms, p99 "
                  f"{best['first_byte']['p99_ms']:.3f} ms, first event p50 "
                  f"{best['first_event']['p50_ms']:.3f} ms"
                  + (f", {best['non_2xx'] + best['socket']} ERRORS"
                     if best["non_2xx"] or best["socket"] else ""))
        return out
