"""The AI gateway in the real ``campusgate serve``: the ``ai:`` section of the file is
sealed into the store, the worker decrypts the provider key, and an OpenAI client's
call reaches a provider on 127.0.0.1 with it; ``campusgate export`` shows only the
sealed form."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from ai_shell_kit import completion

CAMPUSGATE = str(Path(sys.executable).parent / "campusgate")


class _Provider(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, dict[str, object]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.seen.append((self.path, self.headers["authorization"], body))
        answer = completion("served", model=body["model"])
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def provider() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def _port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_chat_with_a_sealed_provider_key(tmp_path: Path, provider: str) -> None:
    proxy, admin = _port(), _port()
    config = tmp_path / "campusgate.yaml"
    config.write_text(f"""\
listeners:
  proxy: {{address: 127.0.0.1:{proxy}}}
  admin: {{address: 127.0.0.1:{admin}}}
storage: sqlite:///{tmp_path / 'cg.db'}
secret_key_file: {tmp_path / 'secret.key'}
limits: {{shutdown_timeout: 2}}
ai:
  providers:
    - {{name: main, type: openai, base_url: "{provider}", api_key: "${{TEST_OPENAI_KEY}}"}}
  models:
    - {{name: gpt-fast, targets: [{{provider: main, model: gpt-4o-mini}}]}}
""")
    env = {**os.environ, "CAMPUSGATE_LOG_LEVEL": "WARNING", "TEST_OPENAI_KEY": "sk-live-123"}
    proc = subprocess.Popen([CAMPUSGATE, "serve", "-c", str(config)], cwd=tmp_path, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        assert proc.stderr is not None
        token = ""
        deadline = time.monotonic() + 30
        while not token and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, f"campusgate exited with {proc.wait()}"
            token = line.strip() if line.strip().startswith("cgadm_") else ""
        url = f"http://127.0.0.1:{proxy}"
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/v1/models").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        r = httpx.post(f"{url}/v1/chat/completions", json={
            "model": "gpt-fast", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == "served"
        assert r.json()["model"] == "gpt-fast"
        assert _Provider.seen[-1][1] == "Bearer sk-live-123"
        exported = subprocess.run(
            [CAMPUSGATE, "export", "--admin-url", f"http://127.0.0.1:{admin}",
             "--token", token], capture_output=True, text=True, timeout=30, check=True)
        assert "api_key_encrypted: enc1$" in exported.stdout
        assert "sk-live-123" not in exported.stdout
    finally:
        proc.terminate()
        proc.wait(10)
