"""The ``campusgate`` command: serve, validate, apply, export, schema, version, admin-token.

User errors (a bad file, an unreachable admin API, a refused change) are printed as
one readable message on stderr with exit status 1, never as a traceback. Modules
that need the server or the store are imported inside their commands, so the
offline commands stay fast.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer

from campusgate import __version__
from campusgate.config.loader import (
    ConfigError,
    config_json_schema,
    dump_yaml,
    load_config_file,
    load_config_text,
    load_entities_file,
)
from campusgate.config.model import Config, Entities
from campusgate.identity_cli import identity_app

__all__ = ["app", "main"]

DEFAULT_ADMIN_URL = "http://127.0.0.1:8081"
CHANGE_MARKS = {"created": "+", "updated": "~", "deleted": "-"}

app = typer.Typer(
    name="campusgate",
    help="campusgate: an API and AI gateway.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
admin_token_app = typer.Typer(help="Manage the admin API token.", no_args_is_help=True)
app.add_typer(admin_token_app, name="admin-token")
app.add_typer(identity_app, name="identity")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "-c",
        "--config",
        envvar="CAMPUSGATE_CONFIG",
        help="Config file (default: the built-in demo config).",
        show_default=False,
    ),
]
FileOption = Annotated[Path, typer.Option("-f", "--file", help="Config file.")]
OutputOption = Annotated[
    Path | None,
    typer.Option(
        "-o", "--output", help="Write to this file instead of stdout.", show_default=False
    ),
]
AdminUrlOption = Annotated[
    str, typer.Option("--admin-url", envvar="CAMPUSGATE_ADMIN_URL", help="Admin API base URL.")
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="CAMPUSGATE_ADMIN_TOKEN", help="Admin API token.", show_default=False
    ),
]


def main() -> None:
    """Entry point of the ``campusgate`` script."""
    app()


# ---------------------------------------------------------------- commands


@app.command()
def serve(
    config: ConfigOption = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the gateway."""
    settings = _load_config(config)
    from campusgate import server  # the data plane's imports are heavy; load them only here

    raise typer.Exit(server.run(settings, config, workers))


@app.command()
def validate(file: FileOption) -> None:
    """Check a config file; print what it holds or each problem with its line."""
    config = _load_config(file)
    upstreams = len(config.upstreams) + sum(1 for s in config.services if s.upstream)
    routes = sum(len(s.routes) for s in config.services)
    counts = ", ".join(
        [
            _count(len(config.services), "service"),
            _count(routes, "route"),
            _count(upstreams, "upstream"),
            *([_count(len(config.consumers), "consumer")] if config.consumers else []),
        ]
    )
    typer.echo(f"{file}: ok ({counts})")


@app.command()
def apply(
    file: FileOption,
    admin_url: AdminUrlOption = DEFAULT_ADMIN_URL,
    token: TokenOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the changes without saving them.")
    ] = False,
) -> None:
    """Make the gateway's entities (upstreams, services, routes, plugins) those of FILE."""
    try:
        entities = load_entities_file(file)
    except ConfigError as exc:
        _fail(str(exc))
    result = _admin_request(
        "PUT",
        admin_url,
        "/config",
        token,
        json=entities.model_dump(mode="json"),
        params={"dry_run": "true"} if dry_run else None,
    )
    changes = result.get("changes") or []
    for change in changes:
        mark = CHANGE_MARKS.get(str(change.get("action")), "?")
        typer.echo(f"{mark} {change.get('kind')} {change.get('name')}")
    revision = result.get("revision")
    if not changes and not result.get("changed"):
        typer.echo(f"no changes (revision {revision})")
    elif dry_run:
        typer.echo(f"dry run: nothing saved (revision {revision})")
    else:
        typer.echo(f"revision {revision}")


@app.command()
def export(
    admin_url: AdminUrlOption = DEFAULT_ADMIN_URL,
    token: TokenOption = None,
    output: OutputOption = None,
) -> None:
    """Write the gateway's current entities as YAML (a file apply accepts)."""
    result = _admin_request("GET", admin_url, "/config", token)
    try:
        entities = Entities.model_validate(result.get("config", {}))
    except ValueError as exc:
        _fail(f"the admin API returned a config this campusgate cannot read: {exc}")
    revision = result.get("revision")
    text = f"# campusgate entities, revision {revision}, from {admin_url}\n" + dump_yaml(entities)
    _write(text, output, f"revision {revision}")


@app.command()
def schema(output: OutputOption = None) -> None:
    """Print the JSON Schema of the config file (for editors and CI)."""
    _write(json.dumps(config_json_schema(), indent=2) + "\n", output, "JSON Schema")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"campusgate {__version__}")


@admin_token_app.command("rotate")
def admin_token_rotate(config: ConfigOption = None) -> None:
    """Revoke every admin token and print a new one (shown only this once)."""
    settings = _load_config(config)
    token = asyncio.run(_rotate_admin_token(settings.storage))
    typer.echo("new admin token (store it now; old tokens no longer work):", err=True)
    typer.echo(token)


# ---------------------------------------------------------------- helpers


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(1)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _load_config(path: Path | None) -> Config:
    """The config at ``path``, or the built-in demo; problems end the command."""
    try:
        if path is not None:
            return load_config_file(path)
        demo = importlib.resources.files("campusgate").joinpath("demo.yaml")
        try:
            text = demo.read_text(encoding="utf-8")
        except FileNotFoundError:
            _fail("this build has no built-in demo config; pass -c FILE")
        return load_config_text(text, source="<built-in demo.yaml>")
    except ConfigError as exc:
        _fail(str(exc))


def _write(text: str, output: Path | None, what: str) -> None:
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror or exc}")
    typer.echo(f"wrote {what} to {output}", err=True)


def _admin_request(
    method: str,
    admin_url: str,
    path: str,
    token: str | None,
    *,
    json: Any = None,
    params: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Call the admin API; return its JSON object, or end the command with its error."""
    url = admin_url.rstrip("/") + path
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(timeout=30.0) as client:
            response = client.request(method, url, headers=headers, json=json, params=params)
    except httpx.ConnectError:
        _fail(
            f"cannot connect to the admin API at {admin_url} "
            "(is campusgate running? set --admin-url or CAMPUSGATE_ADMIN_URL)"
        )
    except httpx.TimeoutException:
        _fail(f"the admin API at {admin_url} did not answer in time")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        _fail(f"admin API request to {url} failed: {exc}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_error:
        _fail(_describe_error(response.status_code, body, response.text))
    if not isinstance(body, dict):
        _fail(f"the admin API at {admin_url} answered {path} with something that is not JSON")
    return body


def _describe_error(status: int, body: Any, text: str) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        snippet = " ".join(text.split())[:200]
        return f"error: the admin API answered HTTP {status}" + (f": {snippet}" if snippet else "")
    lines = [f"error: {error.get('message') or 'request failed'} ({error.get('code', status)})"]
    for detail in error.get("details") or []:
        if isinstance(detail, dict):
            where = detail.get("path")
            lines.append(
                f"  {where}: {detail.get('message')}" if where else f"  {detail.get('message')}"
            )
    if status == 401:
        lines.append("  (pass --token or set CAMPUSGATE_ADMIN_TOKEN)")
    return "\n".join(lines)


async def _rotate_admin_token(dsn: str) -> str:
    from sqlalchemy.exc import SQLAlchemyError

    from campusgate.store import ConfigStore, InvalidDsn

    try:
        store = await ConfigStore.open(dsn)
    except (OSError, InvalidDsn, SQLAlchemyError) as exc:
        reason = str(exc).partition("\n(Background on this error")[0]
        _fail(f"cannot open the store: {reason}")
    try:
        return await store.rotate_admin_token()
    finally:
        await store.close()
