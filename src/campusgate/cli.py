"""The ``campusgate`` command: serve, validate, apply, export, schema, version, admin-token,
identity.

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
from typing import Annotated

import typer

from campusgate import __version__
from campusgate.admin_client import (
    DEFAULT_ADMIN_URL,
    AdminUrlOption,
    TokenOption,
    admin_request,
    fail,
)
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
from campusgate.top_cli import register as register_top

__all__ = ["app", "main"]

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
register_top(app)

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
        fail(str(exc))
    result = admin_request(
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
    result = admin_request("GET", admin_url, "/config", token)
    try:
        entities = Entities.model_validate(result.get("config", {}))
    except ValueError as exc:
        fail(f"the admin API returned a config this campusgate cannot read: {exc}")
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
            fail("this build has no built-in demo config; pass -c FILE")
        return load_config_text(text, source="<built-in demo.yaml>")
    except ConfigError as exc:
        fail(str(exc))


def _write(text: str, output: Path | None, what: str) -> None:
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    typer.echo(f"wrote {what} to {output}", err=True)


async def _rotate_admin_token(dsn: str) -> str:
    from sqlalchemy.exc import SQLAlchemyError

    from campusgate.store import ConfigStore, InvalidDsn

    try:
        store = await ConfigStore.open(dsn)
    except (OSError, InvalidDsn, SQLAlchemyError) as exc:
        reason = str(exc).partition("\n(Background on this error")[0]
        fail(f"cannot open the store: {reason}")
    try:
        return await store.rotate_admin_token()
    finally:
        await store.close()
