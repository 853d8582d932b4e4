"""`campusgate serve` as a user runs it: a real process, real ports, real files.

First start and the admin token, hot reload through the admin API, `apply` and the
watched YAML file, several workers following one change, graceful shutdown.
"""

from __future__ import annotations

import asyncio
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from campusgate.server import _LogWriter, terminate

CAMPUSGATE = [str(Path(sys.executable).parent / "campusgate")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Gateway:
    proc: subprocess.Popen[str]
    proxy: str
    admin: str
    token: str
    workdir: Path
    config: Path

    def admin_client(self) -> httpx.Client:
        return httpx.Client(base_url=self.admin, timeout=5,
                            headers={"Authorization": f"Bearer {self.token}"})


def write_config(path: Path, proxy_port: int, admin_port: int, services: str,
                 storage: str | None = None) -> None:
    storage = storage or f"sqlite:///{path.parent / 'data' / 'cg.db'}"
    path.write_text(
        f"listeners:\n"
        f"  proxy: {{address: 127.0.0.1:{proxy_port}}}\n"
        f"  admin: {{address: 127.0.0.1:{admin_port}}}\n"
        f"storage: {storage}\n"
        f"limits: {{shutdown_timeout: 10}}\n"
        f"services:\n{services}"
    )


ECHO_SERVICE = """\
  - name: echo
    url: builtin://echo
    routes:
      - {name: echo, paths: [/echo]}
"""


def wait_until(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if callable(check) and check():
                return
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"condition not met in {timeout} s (last error: {last})")


def start(workdir: Path, services: str = ECHO_SERVICE, workers: int = 1,
          storage: str | None = None) -> Gateway:
    proxy_port, admin_port = free_port(), free_port()
    config = workdir / "campusgate.yaml"
    write_config(config, proxy_port, admin_port, services, storage)
    stderr = (workdir / "stderr.log").open("w")
    proc = subprocess.Popen(
        [*CAMPUSGATE, "serve", "-c", str(config), "--workers", str(workers)],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=stderr, text=True,
        env={**os.environ, "CAMPUSGATE_LOG_LEVEL": "INFO"},
    )
    proxy = f"http://127.0.0.1:{proxy_port}"
    admin = f"http://127.0.0.1:{admin_port}"
    wait_until(lambda: httpx.get(f"{admin}/healthz", timeout=1).status_code == 200, 20)
    log = (workdir / "stderr.log").read_text()
    tokens = [w for w in log.split() if w.startswith("cgadm_") and len(w) > 40]
    return Gateway(proc, proxy, admin, tokens[0] if tokens else "", workdir, config)


def stop(gw: Gateway) -> int:
    if gw.proc.poll() is None:
        gw.proc.send_signal(signal.SIGTERM)
    return gw.proc.wait(timeout=30)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    gw = start(tmp_path)
    try:
        yield gw
    finally:
        stop(gw)


def test_first_start_prints_a_token_once_and_the_demo_route_answers(tmp_path: Path) -> None:
    gw = start(tmp_path)
    try:
        assert gw.token, "the first start must print an admin token"
        answer = httpx.get(f"{gw.proxy}/echo/hello?x=1")
        assert answer.status_code == 200
        assert answer.json()["path"] == "/echo/hello"
        assert answer.headers["x-request-id"]
        assert httpx.get(f"{gw.admin}/status").status_code == 401
        with gw.admin_client() as admin:
            status = admin.get("/status").json()
        assert status["revision"] >= 1
    finally:
        assert stop(gw) == 0
    stored = (tmp_path / "data" / "cg.db").read_bytes()
    assert gw.token.encode() not in stored, "the token must be stored hashed"
    again = start(tmp_path)
    try:
        assert again.token == "", "the token is printed only at the first start"
    finally:
        stop(again)


def test_route_added_through_the_admin_api_takes_effect_without_restart(gateway: Gateway) -> None:
    assert httpx.get(f"{gateway.proxy}/new/x").status_code == 404
    with gateway.admin_client() as admin:
        created = admin.post("/services/echo/routes", json={"name": "new", "paths": ["/new"]})
        assert created.status_code == 201, created.text
    # The writing worker applies it before answering.
    answer = httpx.get(f"{gateway.proxy}/new/x")
    assert answer.status_code == 200
    assert answer.json()["path"] == "/new/x"


def test_editing_the_yaml_file_reloads_it(gateway: Gateway) -> None:
    text = gateway.config.read_text().replace("paths: [/echo]", "paths: [/echo, /edited]")
    gateway.config.write_text(text)
    wait_until(lambda: httpx.get(f"{gateway.proxy}/edited").status_code == 200)


def test_a_broken_yaml_edit_keeps_the_running_config(gateway: Gateway) -> None:
    gateway.config.write_text(gateway.config.read_text().replace("paths: [/echo]", "paths: [echo"))
    time.sleep(2.5)
    assert httpx.get(f"{gateway.proxy}/echo").status_code == 200
    assert "not valid" in (gateway.workdir / "stderr.log").read_text()


def test_apply_prints_the_changes_and_they_take_effect(gateway: Gateway, tmp_path: Path) -> None:
    new = tmp_path / "new.yaml"
    new.write_text(ECHO_SERVICE.replace("/echo]}", "/echo, /applied]}").join(["services:\n", ""]))
    env = {**os.environ, "CAMPUSGATE_ADMIN_URL": gateway.admin,
           "CAMPUSGATE_ADMIN_TOKEN": gateway.token}
    out = subprocess.run([*CAMPUSGATE, "apply", "-f", str(new)], capture_output=True,
                         text=True, env=env, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "~ route echo" in out.stdout
    assert httpx.get(f"{gateway.proxy}/applied").status_code == 200
    exported = subprocess.run([*CAMPUSGATE, "export"], capture_output=True, text=True,
                              env=env, timeout=30)
    assert "/applied" in exported.stdout


class SlowHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        time.sleep(1.5)
        body = b"finally"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def slow_upstream() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_sigterm_drains_requests_in_flight_then_exits_0(tmp_path: Path, slow_upstream: int) -> None:
    services = ECHO_SERVICE + (
        f"  - name: slow\n    url: http://127.0.0.1:{slow_upstream}\n"
        f"    routes:\n      - {{name: slow, paths: [/slow]}}\n"
    )
    gw = start(tmp_path, services)
    result: dict[str, object] = {}

    def call() -> None:
        try:
            response = httpx.get(f"{gw.proxy}/slow", timeout=10)
            result["status"], result["body"] = response.status_code, response.text
        except httpx.HTTPError as exc:
            result["error"] = repr(exc)

    client = threading.Thread(target=call)
    client.start()
    time.sleep(0.5)
    gw.proc.send_signal(signal.SIGTERM)
    client.join(10)
    assert result == {"status": 200, "body": "finally"}
    assert gw.proc.wait(timeout=15) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{gw.proxy}/echo", timeout=1)


def test_every_worker_follows_a_change_within_a_second(tmp_path: Path) -> None:
    workers_follow_a_change(tmp_path, None)


async def test_workers_share_postgresql_and_follow_a_change(tmp_path: Path, pg_dsn: str) -> None:
    await asyncio.to_thread(workers_follow_a_change, tmp_path, pg_dsn)


def workers_follow_a_change(tmp_path: Path, storage: str | None) -> None:
    gw = start(tmp_path, workers=2, storage=storage)
    try:
        # Fresh connections land on either worker (SO_REUSEPORT).
        wait_until(lambda: all(httpx.get(f"{gw.proxy}/echo").status_code == 200
                               for _ in range(20)))
        auth = {"Authorization": f"Bearer {gw.token}"}
        pids = {httpx.get(f"{gw.admin}/status", headers=auth).json()["pid"] for _ in range(30)}
        assert len(pids) == 2, "both workers should answer"
        with gw.admin_client() as admin:
            created = admin.post("/services/echo/routes", json={"name": "w", "paths": ["/w"]})
            assert created.status_code == 201
        changed = time.monotonic()
        while True:
            codes = {httpx.get(f"{gw.proxy}/w").status_code for _ in range(20)}
            if codes == {200}:
                break
            assert time.monotonic() - changed < 5, f"workers still answer {codes}"
        # ...and no request fails while they switch over: checked again for stability
        assert {httpx.get(f"{gw.proxy}/w").status_code for _ in range(40)} == {200}
    finally:
        assert stop(gw) == 0


def test_reload_under_load_fails_no_request(gateway: Gateway) -> None:
    failures: list[str] = []
    done = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=gateway.proxy, timeout=5) as client:
            for _ in range(3000):
                if done.is_set():
                    return
                try:
                    response = client.get("/echo/x")
                    if response.status_code != 200:
                        failures.append(str(response.status_code))
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    with gateway.admin_client() as admin:
        for i in range(15):
            route = {"name": f"r{i}", "paths": [f"/r{i}"]}
            answer = admin.post("/services/echo/routes", json=route)
            assert answer.status_code == 201
            time.sleep(0.05)
    done.set()
    for thread in threads:
        thread.join(30)
    assert failures == []


def _ignoring_sigterm() -> subprocess.Popen[bytes]:
    hung = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
         "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE)
    assert hung.stdout is not None and hung.stdout.readline() == b"ready\n"
    return hung


def test_the_supervisor_kills_a_log_writer_that_ignores_sigterm(tmp_path: Path) -> None:
    """A hung or stopped log writer never holds the supervisor's exit."""
    hung = _ignoring_sigterm()
    writer = _LogWriter({}, str(tmp_path), drain_timeout=40.0)
    writer.pid = hung.pid
    writer.stop(kill_after=0.3)
    assert hung.wait(timeout=10) == -signal.SIGKILL


def test_the_supervisor_kills_a_worker_still_there_after_its_time_only() -> None:
    gone, hung = _ignoring_sigterm(), _ignoring_sigterm()
    children = {hung.pid: 0}  # ``gone`` was reaped meanwhile: never killed
    terminate(gone.pid, 0.2, lambda: gone.pid in children, "worker 1")
    terminate(hung.pid, 0.2, lambda: hung.pid in children, "worker 0")
    assert hung.wait(timeout=10) == -signal.SIGKILL
    time.sleep(0.5)
    assert gone.poll() is None  # SIGTERM ignored, not reaped: left alone
    gone.kill()
    gone.wait()
