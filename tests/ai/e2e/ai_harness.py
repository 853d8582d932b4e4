"""A real ``campusgate serve`` with an ``ai:`` section in front of fake providers, and
the official SDKs pointed at it unchanged: the gateway's URL as ``base_url`` and the
consumer's campusgate key as ``api_key`` (``from ai_harness import ...``).

The gateway's configuration (:func:`ai_yaml`) is what an operator would write: two
consumers with key-auth keys (``alice`` in group ``staff``, ``bob`` in none), an OpenAI
provider and an Anthropic provider on one fake (they differ by path), a backup OpenAI
provider on a second fake, and a provider whose key the third fake refuses.  Model
names, and what the fakes do for each provider model:

========== ============================ ==========================================
name       target (provider / model)    behaviour
========== ============================ ==========================================
gpt-fast   main / gpt-4o-mini           the default reply
claude     anthropic / claude-haiku     the default reply (OpenAI <-> Anthropic)
flaky      main / always-429            429 + retry-after, falls back to ``backup``
broken     main / always-500            500, falls back to ``backup``
backup     backup / backup-model        the default reply, from the second fake
limited    main / limited-429           429 + retry-after, no fallback
locked     refused / any                401 (wrong key); falls back to ``backup``
staff-only main / staff-model           only consumers of group ``staff``
embed      main / text-embedding-3      embeddings
========== ============================ ==========================================
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import anthropic
import httpx
import openai
from fake_provider import FakeProvider, RunningFake, running_fake
from fake_reply import Reply
from identity_harness import CAMPUSGATE, ServedGateway, free_port

__all__ = ["ALICE_KEY", "BOB_KEY", "PROVIDER_KEY", "AiGateway", "ai_gateway", "ai_yaml",
           "key_headers"]

ALICE_KEY = "cg-alice-0123456789abcdef0123456789"
BOB_KEY = "cg-bob-0123456789abcdef0123456789ab"


def key_headers(key: str) -> dict[str, str]:
    """The consumer key as the SDKs send it (key-auth reads it after ``Bearer``)."""
    return {"authorization": f"Bearer {key}"}

PROVIDER_KEY = "sk-fake-good"


def ai_yaml(main: str, backup: str, refused: str) -> str:
    """The ``consumers``/``consumer_groups``/``ai`` sections, fakes at these URLs."""
    return f"""\
consumer_groups:
  - name: staff
consumers:
  - name: alice
    groups: [staff]
    credentials: [{{type: key-auth, key: {ALICE_KEY}}}]
  - name: bob
    credentials: [{{type: key-auth, key: {BOB_KEY}}}]
ai:
  path: /v1
  retries: 2
  providers:
    - {{name: main, type: openai, base_url: "{main}/v1", api_key: {PROVIDER_KEY},
       timeouts: {{connect: 2, read: 5}}}}
    - {{name: anthropic, type: anthropic, base_url: "{main}", api_key: {PROVIDER_KEY}}}
    - {{name: backup, type: openai, base_url: "{backup}/v1", api_key: {PROVIDER_KEY}}}
    - {{name: refused, type: openai, base_url: "{refused}/v1", api_key: sk-wrong}}
  models:
    - {{name: gpt-fast, targets: [{{provider: main, model: gpt-4o-mini}}]}}
    - {{name: claude, targets: [{{provider: anthropic, model: claude-haiku}}]}}
    - {{name: flaky, targets: [{{provider: main, model: always-429}}], fallbacks: [backup]}}
    - {{name: broken, targets: [{{provider: main, model: always-500}}], fallbacks: [backup]}}
    - {{name: backup, targets: [{{provider: backup, model: backup-model}}]}}
    - {{name: limited, targets: [{{provider: main, model: limited-429}}]}}
    - {{name: locked, targets: [{{provider: refused, model: any}}], fallbacks: [backup]}}
    - {{name: staff-only, targets: [{{provider: main, model: staff-model}}],
       groups: [staff]}}
    - {{name: embed, targets: [{{provider: main, model: text-embedding-3}}]}}
  plugins:
    - name: key-auth
      config: {{key_names: [authorization, x-api-key]}}
"""


@dataclass
class AiGateway:
    """The served gateway and its three fakes."""

    served: ServedGateway
    main: RunningFake
    backup: RunningFake
    refused: RunningFake

    @property
    def base(self) -> str:
        return f"{self.served.proxy}/v1"

    def openai(self, key: str = ALICE_KEY) -> openai.OpenAI:
        """The SDK as a consumer configures it: the gateway's URL and the consumer key."""
        return openai.OpenAI(base_url=self.base, api_key=key, max_retries=0, timeout=10)

    def anthropic(self, key: str = ALICE_KEY) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.served.proxy, api_key=key, max_retries=0,
                                   timeout=10)


def _wait_ready(proxy: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"campusgate exited with {proc.returncode}")
        try:
            answer = httpx.get(f"{proxy}/v1/models", headers=key_headers(ALICE_KEY))
            if answer.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError("the AI gateway did not come up")


@contextmanager
def ai_gateway(workdir: Path) -> Iterator[AiGateway]:
    """Three fakes and ``campusgate serve`` (one worker) in front of them."""
    with ExitStack() as stack:
        main = stack.enter_context(running_fake(FakeProvider(
            keys={PROVIDER_KEY},
            by_model={"always-429": Reply(status=429, retry_after=30,
                                          error_message="Rate limit reached for requests"),
                      "always-500": Reply(status=500, error_message="The server had an error"),
                      "limited-429": Reply(status=429, retry_after=20,
                                           error_message="Rate limit reached for tokens"),
                      })))
        backup = stack.enter_context(running_fake(FakeProvider(
            Reply(text="From the backup."), keys={PROVIDER_KEY})))
        refused = stack.enter_context(running_fake(FakeProvider(keys={PROVIDER_KEY})))
        proxy_port, admin_port = free_port(), free_port()
        data = workdir / "data"
        config = workdir / "campusgate.yaml"
        config.write_text(
            f"listeners:\n"
            f"  proxy: {{address: 127.0.0.1:{proxy_port}}}\n"
            f"  admin: {{address: 127.0.0.1:{admin_port}}}\n"
            f"storage: sqlite:///{data / 'cg.db'}\n"
            f"state: memory\n"
            f"secret_key_file: {data / 'secret.key'}\n"
            f"limits: {{shutdown_timeout: 5}}\n"
            + ai_yaml(main.url, backup.url, refused.url))
        proc = subprocess.Popen(
            [CAMPUSGATE, "serve", "-c", str(config), "--workers", "1"], cwd=workdir,
            text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, "CAMPUSGATE_LOG_LEVEL": "WARNING"})
        assert proc.stderr is not None
        log: list[str] = []
        threading.Thread(target=lambda: log.extend(proc.stderr or ()), daemon=True).start()
        proxy = f"http://127.0.0.1:{proxy_port}"
        served = ServedGateway(proc, proxy, f"http://127.0.0.1:{admin_port}", "", workdir)
        stack.callback(served.stop)
        try:
            _wait_ready(proxy, proc)
        except AssertionError as failed:
            raise AssertionError(f"{failed}\n{''.join(log)[-4000:]}") from None
        yield AiGateway(served, main, backup, refused)
