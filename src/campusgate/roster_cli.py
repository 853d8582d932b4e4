"""``campusgate identity roster ...`` and ``campusgate identity seed-demo``: import a
district's OneRoster CSV bundle, list the districts, remove one, create the demo
district -- all through the admin API (``--admin-url``, ``--token``).

An import shows a progress bar on stderr as the gateway reports it; a refused bundle
prints each bad row as ``file:line: reason`` and exits with status 1, having changed
nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer

from campusgate.admin_client import (
    DEFAULT_ADMIN_URL,
    AdminUrlOption,
    TokenOption,
    admin_request,
    describe_error,
    fail,
)

__all__ = ["register", "roster_app"]

roster_app = typer.Typer(help="Rosters (OneRoster): import a district's CSV bundle, "
                         "list or remove districts.", no_args_is_help=True)

_BAR = 30


def register(identity_app: typer.Typer) -> None:
    """Add ``roster`` and ``seed-demo`` to the ``campusgate identity`` group."""
    identity_app.add_typer(roster_app, name="roster")
    identity_app.command("seed-demo")(seed_demo)


def _problem_lines(details: list[Any]) -> list[str]:
    return [f"{d.get('path')}: {d.get('message')}" for d in details if isinstance(d, dict)]


class _ProgressBar:
    """One line per stage on stderr, redrawn as events come."""

    def __init__(self) -> None:
        self.stage: str | None = None

    def show(self, stage: str, done: int, total: int) -> None:
        if self.stage is not None and stage != self.stage:
            typer.echo(err=True)
        self.stage = stage
        filled = _BAR if total == 0 else _BAR * done // total
        typer.echo(f"\r{stage:<17} [{'#' * filled}{'.' * (_BAR - filled)}] {done}/{total}",
                   err=True, nl=False)

    def close(self) -> None:
        if self.stage is not None:
            typer.echo(err=True)
            self.stage = None


def _final(event: dict[str, Any]) -> None:
    """Print the import's final event; exit 1 unless it succeeded."""
    kind = event.get("event")
    if kind == "done":
        result = event.get("result") or {}
        tenant = (event.get("tenant") or {}).get("name")
        typer.echo(f"imported into tenant {tenant}")
        for what in ("created", "updated", "deleted"):
            counts = result.get(what) or {}
            typer.echo(f"  {what}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
        accounts = result.get("accounts") or {}
        typer.echo("  accounts: " + ", ".join(f"{n} {k}" for k, n in accounts.items()))
        return
    if kind == "refused":
        for problem in event.get("problems") or []:
            typer.echo(f"{problem.get('file')}:{problem.get('line')}: "
                       f"{problem.get('reason')}", err=True)
        fail("the import was refused; nothing was changed")
    fail(f"error: {event.get('message') or 'the import failed'}")


@roster_app.command("import")
def import_bundle(
    bundle: Annotated[Path, typer.Argument(help="The OneRoster CSV bundle (a zip).",
                                           exists=True, dir_okay=False, readable=True)],
    tenant: Annotated[str, typer.Option("--tenant", help="The district's tenant name "
                                        "(created if new).")],
    admin_url: AdminUrlOption = DEFAULT_ADMIN_URL,
    token: TokenOption = None,
) -> None:
    """Import a OneRoster 1.1 or 1.2 CSV bundle: all of it, or nothing."""
    url = f"{admin_url.rstrip('/')}/identity/roster/tenants/{quote(tenant, safe='')}/import"
    headers = {"Content-Type": "application/zip"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    bar = _ProgressBar()
    final: dict[str, Any] | None = None
    try:
        with httpx.Client(timeout=httpx.Timeout(30.0, read=600.0)) as client, \
                client.stream("POST", url, content=bundle.read_bytes(),
                              headers=headers) as response:
            if response.is_error:
                response.read()
                _refused(response)
            for line in response.iter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("event") == "progress":
                    bar.show(str(event.get("stage")), int(event.get("done", 0)),
                             int(event.get("total", 0)))
                else:
                    final = event
    except httpx.ConnectError:
        fail(f"cannot connect to the admin API at {admin_url} "
             "(is campusgate running? set --admin-url or CAMPUSGATE_ADMIN_URL)")
    except (httpx.HTTPError, ValueError) as exc:
        bar.close()
        fail(f"the import stopped before it finished ({exc}); the gateway rolls back an "
             "import it could not finish")
    bar.close()
    if final is None:
        fail("the admin API ended the import without a result")
    _final(final)


def _refused(response: httpx.Response) -> None:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if response.status_code == 422 and isinstance(error, dict) and error.get("details"):
        for line in _problem_lines(error["details"]):
            typer.echo(line, err=True)
        fail(str(error.get("message")))
    fail(describe_error(response.status_code, body, response.text))


@roster_app.command("tenants")
def tenants(admin_url: AdminUrlOption = DEFAULT_ADMIN_URL,
            token: TokenOption = None) -> None:
    """List the districts whose roster the gateway holds, with row counts."""
    result = admin_request("GET", admin_url, "/identity/roster/tenants", token)
    found = result.get("data") or []
    if not found:
        typer.echo("no roster tenants", err=True)
        return
    for item in found:
        counts = item.get("counts") or {}
        typer.echo(f"{item.get('id')}  {item.get('name')}  " + ", ".join(
            f"{n} {kind}" for kind, n in counts.items()))


@roster_app.command("delete-tenant")
def delete_tenant(
    name: Annotated[str, typer.Argument(help="The tenant (district) to remove.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    delete_accounts: Annotated[bool, typer.Option(
        "--delete-accounts", help="Delete its people's accounts (consents, grants and "
        "all) instead of disabling them; frees their usernames.")] = False,
    admin_url: AdminUrlOption = DEFAULT_ADMIN_URL,
    token: TokenOption = None,
) -> None:
    """Remove a district: its roster rows go; its people's accounts are disabled."""
    fate = "delete" if delete_accounts else "disable"
    if not yes and not typer.confirm(
            f"Remove roster tenant {name!r}: all its rows, and {fate} its people's "
            "accounts?", err=True):
        fail("nothing was removed")
    result = admin_request("DELETE", admin_url,
                           f"/identity/roster/tenants/{quote(name, safe='')}", token,
                           params={"accounts": fate})
    deleted = result.get("deleted") or {}
    accounts = result.get("accounts") or {}
    typer.echo(f"removed tenant {result.get('tenant', name)}")
    typer.echo("  deleted: " + ", ".join(f"{n} {kind}" for kind, n in deleted.items()))
    if delete_accounts:
        typer.echo(f"  accounts: {accounts.get('deleted', 0)} deleted")
    else:
        typer.echo(f"  accounts: {accounts.get('disabled', 0)} disabled, "
                   f"{accounts.get('claims_removed', 0)} lost their roster claims")


def seed_demo(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant name for the demo "
                                        "district.")] = "demo",
    password: Annotated[str | None, typer.Option(
        "--password", help="Everyone's password (default: a random one, printed once).",
        show_default=False)] = None,
    admin_url: AdminUrlOption = DEFAULT_ADMIN_URL,
    token: TokenOption = None,
) -> None:
    """Create a demo district: 3 schools, 8 classes, 6 teachers, 40 students, an admin."""
    body: dict[str, Any] = {"tenant": tenant}
    if password is not None:
        body["password"] = password
    result = admin_request("POST", admin_url, "/identity/roster/demo", token, json=body)
    people = result.get("people") or []
    by_role: dict[str, list[str]] = {}
    for person in people:
        by_role.setdefault(str(person.get("role")), []).append(str(person.get("username")))
    created = (result.get("result") or {}).get("created") or {}
    typer.echo(f"demo district in tenant {tenant}: " + ", ".join(
        f"{n} {kind}" for kind, n in created.items()))
    for role, names in sorted(by_role.items()):
        sample = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        typer.echo(f"  {len(names)} {role}(s): {sample}")
    if result.get("password"):
        typer.echo(f"password (everyone): {result['password']}")
        typer.echo("password (shown only this once: store it now)", err=True)
    example = by_role.get("teacher", [""])[0]
    typer.echo(f"sign in at the identity provider's login page as {example} (or any "
               "username above) with that password")
