"""The ``campusgate`` command, run in-process; apply/export talk to a real HTTP server."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from campusgate import __version__
from campusgate.cli import app
from campusgate.config.loader import load_config_text, parse_entities_text

GOOD = """\
storage: sqlite:///${DATA_DIR:-data}/gate.db
upstreams:
  - name: pool
    targets: [{target: 127.0.0.1:9001}]
services:
  - name: demo
    url: http://pool
    routes:
      - {name: api, paths: [/api]}
      - {name: web, paths: [/]}
  - name: inline
    upstream: {targets: [{target: 127.0.0.1:9002}]}
    routes: [{name: inline, paths: [/inline]}]
"""

BAD = """\
services:
  - name: demo
    url: http://127.0.0.1:1
    routes:
      - name: api
        pths: [/api]
"""


@dataclass
class AdminStub:
    """What the fake admin API received, and what it should answer."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    body: Any = None


@pytest.fixture
def admin() -> Iterator[AdminStub]:
    """A real HTTP server on 127.0.0.1 answering like the admin API's /config."""
    stub = AdminStub(url="")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            stub.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "authorization": self.headers.get("Authorization"),
                    "json": json.loads(raw) if raw else None,
                }
            )
            payload = stub.body if isinstance(stub.body, bytes) else json.dumps(stub.body).encode()
            self.send_response(stub.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_PUT = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI as a user without the admin variables set (the README has them exported,
    so the shell running the tests may too)."""
    for name in ("CAMPUSGATE_ADMIN_TOKEN", "CAMPUSGATE_ADMIN_URL", "CAMPUSGATE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


@pytest.fixture
def good_file(tmp_path: Path) -> Path:
    path = tmp_path / "gate.yaml"
    path.write_text(GOOD)
    return path


@pytest.fixture
def bad_file(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    return path


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ---------------------------------------------------------------- offline commands


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.stdout == f"campusgate {__version__}\n"


def test_validate_ok_counts_services_routes_upstreams(runner: CliRunner, good_file: Path) -> None:
    result = runner.invoke(app, ["validate", "-f", str(good_file)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{good_file}: ok (2 services, 3 routes, 2 upstreams)\n"


def test_validate_counts_consumers_when_there_are_some(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("consumers:\n  - {name: a}\n  - {name: b}\n")
    result = runner.invoke(app, ["validate", "-f", str(path)])
    assert result.stdout == f"{path}: ok (0 services, 0 routes, 0 upstreams, 2 consumers)\n"


def test_validate_prints_problems_with_lines_and_exits_1(runner: CliRunner, bad_file: Path) -> None:
    result = runner.invoke(app, ["validate", "-f", str(bad_file)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"{bad_file}:6: services[0].routes[0].pths: unknown key 'pths'; did you mean 'paths'?\n"
    )


def test_validate_missing_file_and_unset_variable(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", "-f", str(tmp_path / "none.yaml")])
    assert result.exit_code == 1
    assert "cannot read file" in result.stderr and "Traceback" not in result.output

    path = tmp_path / "env.yaml"
    path.write_text("state: '${CG_TEST_STATE}'\n")
    result = runner.invoke(app, ["validate", "-f", str(path)], env={"CG_TEST_STATE": None})
    assert result.exit_code == 1
    assert result.stderr == f"{path}:1: state: environment variable CG_TEST_STATE is not set\n"
    result = runner.invoke(app, ["validate", "-f", str(path)], env={"CG_TEST_STATE": "memory"})
    assert result.exit_code == 0


def test_schema_to_stdout_and_file(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert "services" in schema["properties"]
    out = tmp_path / "schema.json"
    result = runner.invoke(app, ["schema", "-o", str(out)])
    assert result.exit_code == 0
    assert json.loads(out.read_text()) == schema


def test_serve_with_a_bad_file_prints_problems_before_starting(
    runner: CliRunner, bad_file: Path
) -> None:
    result = runner.invoke(app, ["serve", "-c", str(bad_file)])
    assert result.exit_code == 1
    assert "pths: unknown key" in result.stderr


def test_no_arguments_shows_help(runner: CliRunner) -> None:
    result = runner.invoke(app, [])
    assert "validate" in result.output and "apply" in result.output


# ---------------------------------------------------------------- apply


def test_apply_sends_entities_and_prints_changes(
    runner: CliRunner, admin: AdminStub, good_file: Path
) -> None:
    admin.body = {
        "revision": 7,
        "changed": True,
        "changes": [
            {"action": "deleted", "kind": "upstream", "name": "old"},
            {"action": "updated", "kind": "route", "name": "api"},
            {"action": "created", "kind": "service", "name": "demo"},
        ],
    }
    result = runner.invoke(
        app, ["apply", "-f", str(good_file), "--admin-url", admin.url, "--token", "cgadm_t"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "- upstream old\n~ route api\n+ service demo\nrevision 7\n"
    (request,) = admin.requests
    assert (request["method"], request["path"]) == ("PUT", "/config")
    assert request["authorization"] == "Bearer cgadm_t"
    assert "storage" not in request["json"]  # bootstrap keys are not sent
    sent = parse_entities_text(json.dumps(request["json"]))
    assert sent == load_config_text(GOOD).entities()


def test_apply_dry_run_and_env_settings(
    runner: CliRunner, admin: AdminStub, good_file: Path
) -> None:
    admin.body = {
        "revision": 3,
        "changed": True,
        "changes": [{"action": "created", "kind": "route", "name": "web"}],
    }
    env = {"CAMPUSGATE_ADMIN_URL": admin.url + "/", "CAMPUSGATE_ADMIN_TOKEN": "from-env"}
    result = runner.invoke(app, ["apply", "-f", str(good_file), "--dry-run"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == "+ route web\ndry run: nothing saved (revision 3)\n"
    (request,) = admin.requests
    assert request["path"] == "/config?dry_run=true"
    assert request["authorization"] == "Bearer from-env"


def test_apply_without_changes(runner: CliRunner, admin: AdminStub, good_file: Path) -> None:
    admin.body = {"revision": 12, "changed": False, "changes": []}
    result = runner.invoke(app, ["apply", "-f", str(good_file), "--admin-url", admin.url])
    assert result.exit_code == 0
    assert result.stdout == "no changes (revision 12)\n"
    assert admin.requests[0]["authorization"] is None


def test_apply_invalid_file_sends_nothing(
    runner: CliRunner, admin: AdminStub, bad_file: Path
) -> None:
    result = runner.invoke(app, ["apply", "-f", str(bad_file), "--admin-url", admin.url])
    assert result.exit_code == 1
    assert "pths: unknown key" in result.stderr
    assert admin.requests == []


def test_apply_prints_server_errors_readably(
    runner: CliRunner, admin: AdminStub, good_file: Path
) -> None:
    admin.status = 422
    admin.body = {
        "error": {
            "code": "invalid_config",
            "message": "the config is not valid",
            "details": [{"path": "services[0].routes[1]", "message": "route name taken"}],
        }
    }
    result = runner.invoke(app, ["apply", "-f", str(good_file), "--admin-url", admin.url])
    assert result.exit_code == 1
    assert result.stderr == (
        "error: the config is not valid (invalid_config)\n"
        "  services[0].routes[1]: route name taken\n"
    )


def test_apply_unauthorized_hints_at_the_token(
    runner: CliRunner, admin: AdminStub, good_file: Path
) -> None:
    admin.status = 401
    admin.body = {"error": {"code": "unauthorized", "message": "missing admin token"}}
    result = runner.invoke(app, ["apply", "-f", str(good_file), "--admin-url", admin.url])
    assert result.exit_code == 1
    assert "missing admin token (unauthorized)" in result.stderr
    assert "CAMPUSGATE_ADMIN_TOKEN" in result.stderr


def test_apply_non_json_error(runner: CliRunner, admin: AdminStub, good_file: Path) -> None:
    admin.status = 502
    admin.body = b"<html>Bad Gateway</html>"
    result = runner.invoke(app, ["apply", "-f", str(good_file), "--admin-url", admin.url])
    assert result.exit_code == 1
    assert result.stderr == "error: the admin API answered HTTP 502: <html>Bad Gateway</html>\n"


def test_apply_connection_refused_is_a_message_not_a_traceback(
    runner: CliRunner, good_file: Path
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    result = runner.invoke(app, ["apply", "-f", str(good_file), "--admin-url", url])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"cannot connect to the admin API at {url}")
    assert result.exception is None or isinstance(result.exception, SystemExit)


# ---------------------------------------------------------------- export


def test_export_writes_yaml_that_applies_back(
    runner: CliRunner, admin: AdminStub, tmp_path: Path
) -> None:
    entities = load_config_text(GOOD).entities()
    admin.body = {"revision": 4, "config": entities.model_dump(mode="json")}
    result = runner.invoke(app, ["export", "--admin-url", admin.url, "--token", "t"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"# campusgate entities, revision 4, from {admin.url}\n")
    assert parse_entities_text(result.stdout) == entities
    assert admin.requests[0]["method"] == "GET"
    assert admin.requests[0]["path"] == "/config"
    assert admin.requests[0]["authorization"] == "Bearer t"

    out = tmp_path / "exported.yaml"
    result = runner.invoke(app, ["export", "--admin-url", admin.url, "-o", str(out)])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert parse_entities_text(out.read_text()) == entities


def test_export_connection_refused(runner: CliRunner) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    result = runner.invoke(app, ["export", "--admin-url", url])
    assert result.exit_code == 1
    assert "cannot connect to the admin API" in result.stderr


# ---------------------------------------------------------------- admin-token rotate


async def _token_states(dsn: str, tokens: list[str]) -> list[bool]:
    from campusgate.store import ConfigStore

    store = await ConfigStore.open(dsn)
    try:
        return [await store.verify_admin_token(token) for token in tokens]
    finally:
        await store.close()


def _rotate_twice(runner: CliRunner, tmp_path: Path, dsn: str) -> None:
    config = tmp_path / "gate.yaml"
    config.write_text(f"storage: {dsn}\n")
    tokens = []
    for _ in range(2):
        result = runner.invoke(app, ["admin-token", "rotate", "-c", str(config)])
        assert result.exit_code == 0, result.output
        tokens.append(result.stdout.strip())
        assert "old tokens no longer work" in result.stderr
    assert tokens[0] != tokens[1]
    assert all(t.startswith("cgadm_") for t in tokens)
    assert asyncio.run(_token_states(dsn, tokens)) == [False, True]


def test_admin_token_rotate_sqlite(runner: CliRunner, tmp_path: Path) -> None:
    _rotate_twice(runner, tmp_path, f"sqlite:///{tmp_path}/data/gate.db")


def test_admin_token_rotate_postgresql(runner: CliRunner, tmp_path: Path, pg_dsn: str) -> None:
    _rotate_twice(runner, tmp_path, pg_dsn)


def test_admin_token_rotate_unreachable_store(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "gate.yaml"
    config.write_text(f"storage: postgresql://nobody@127.0.0.1:{_closed_port()}/none\n")
    result = runner.invoke(app, ["admin-token", "rotate", "-c", str(config)])
    assert result.exit_code == 1
    assert result.stderr.startswith("cannot open the store:")
    assert result.stdout == ""
