"""``campusgate identity ...``: clients, users, consents and signing keys of the
built-in identity provider, through the admin API (``--admin-url``, ``--token``).

Secrets the gateway generates (a client secret, a password) are printed once, on
stdout, with a line on stderr saying they will not be shown again.  Errors are one
message on stderr and exit status 1, like every ``campusgate`` command.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any
from urllib.parse import quote

import typer

from campusgate.admin_client import (
    DEFAULT_ADMIN_URL,
    AdminUrlOption,
    TokenOption,
    admin_request,
    fail,
)
from campusgate.roster_cli import register as register_roster

__all__ = ["identity_app"]

identity_app = typer.Typer(
    help="Manage the identity provider: clients, users, consents, signing keys.",
    no_args_is_help=True,
)

_SHOWN_ONCE = "(shown only this once: store it now)"

def _segment(value: str) -> str:
    """``value`` as one URL path segment."""
    return quote(value, safe="")


def _show_secret(label: str, value: str) -> None:
    typer.echo(f"{label}: {value}")
    typer.echo(f"{label} {_SHOWN_ONCE}", err=True)


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                   .rstrip())


# ---------------------------------------------------------------- clients


@identity_app.command("create-client")
def create_client(
    client_id: Annotated[str, typer.Argument(help="The client's id (e.g. lms).")],
    redirect_uri: Annotated[list[str] | None, typer.Option(
        "--redirect-uri", help="Where users return after signing in (repeatable).",
        show_default=False)] = None,
    public: Annotated[bool, typer.Option(
        "--public", help="A browser or native app without a secret (PKCE).")] = False,
    grant: Annotated[list[str] | None, typer.Option(
        "--grant", help="authorization_code, refresh_token or client_credentials "
        "(repeatable; default: authorization_code and refresh_token).",
        show_default=False)] = None,
    scope: Annotated[list[str] | None, typer.Option(
        "--scope", help="A scope the client may ask for (repeatable; default: openid "
        "profile email offline_access).", show_default=False)] = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="Shown to users on the consent page.", show_default=False)] = None,
    admin_url: AdminUrlOption = DEFAULT_ADMIN_URL,
    token: TokenOption = None,
) -> None:
    """Register a client; print its secret (confidential clients) this once."""
    body: dict[str, Any] = {"client_id": client_id, "redirect_uris": redirect_uri or []}
    if public:
        body["token_endpoint_auth_method"] = "none"
    if grant:
        body["grant_types"] = grant
    if scope:
        body["scopes"] = scope
    if name is not None:
        body["name"] = name
    result = admin_request("POST", admin_url, "/identity/clients", token, json=body)
    client = result.get("client") or {}
    typer.echo(f"client_id: {client.get('client_id', client_id)}")
    secret = result.get("client_secret")
    if secret:
        _show_secret("client_secret", str(secret))
    else:
        typer.echo("public client: no secret (it must use PKCE)" if public
                   else "no secret generated", err=True)


@identity_app.command("rotate-secret")
def rotate_secret(
    client_id: Annotated[str, typer.Argument(help="The client's id.")],
    admin_url: AdminUrlOption = DEFAULT_ADMIN_URL,
    token: TokenOption = None,
) -> None:
    """Give a client a new secret; the old one stops working at once."""
    result = admin_request(
        "POST", admin_url, f"/identity/clients/{_segment(client_id)}/secret", token)
    _show_secret("client_secret", str(result.get("client_secret")))
    typer.echo("the previous secret no longer works", err=True)


@identity_app.command("list-clients")
def list_clients(
    admin_url: AdminUrlOption = DEFAULT_ADMIN_URL,
    token: TokenOption = None,
) -> None:
    """List the registered clients (secrets are never shown)."""
    result = admin_request("GET", admin_url, "/identity/clients", token)
    rows = [[str(c.get("client_id")),
             "public" if c.get("public") else "confidential",
             ",".join(c.get("grant_types") or []),
             str(c.get("name") or ""),
             " ".join(c.get("redirect_uris") or [])]
            for c in result.get("data") or []]
    if not rows:
        typer.echo("no clients", err=True)
        return
    _table(rows, ["CLIENT_ID", "TYPE", "GRANTS", "NAME", "REDIRECT_URIS"])


# ---------------------------------------------------------------- users


@identity_app.command("create-user")
def create_user(
    username: Annotated[str, typer.Argument(help="The sign-in name.")],
    email: Annotated[str | None, typer.Option("--email", show_default=False)] = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="Full name.", show_default=False)] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from stdin (first line).")] = False,
    generate_password: Annotated[bool, typer.Option(
        "--generate-password", help="Generate a password and print it this once.")] = False,
    admin_url: AdminUrlOption = DEFAULT_ADMIN_URL,
    token: TokenOption = None,
) -> None:
    """Create a local user (without a password they cannot sign in yet)."""
    if password_stdin and generate_password:
        fail("give --password-stdin or --generate-password, not both")
    body: dict[str, Any] = {"username": username, "email": email, "name": name,
                            "generate_password": generate_password}
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            fail("no password on stdin")
        body["password"] = password
    result = admin_request("POST", admin_url, "/identity/users", token, json=body)
    user = result.get("user") or {}
    typer.echo(f"user {user.get('username')} id {user.get('id')}")
    if result.get("password"):
        _show_secret("password", str(result["password"]))


@identity_app.command("list-users")
def list_users(
    search: Annotated[str | None, typer.Option(
        "--search", help="Part of the username, email or name.", show_default=False)] = None,
    admin_url: AdminUrlOption = DEFAULT_ADMIN_URL,
    token: TokenOption = None,
) -> None:
    """List users, by username."""
    rows: list[list[str]] = []
    offset: Any = 0
    while offset is not None:
        params = {"offset": str(offset), "limit": "500"} | ({"search": search} if search else {})
        result = admin_request("GET", admin_url, "/identity/users", token, params=params)
        rows += [[str(u.get("username")), str(u.get("email") or ""),
                  str(u.get("name") or ""), "disabled" if u.get("disabled") else "active",
                  str(u.get("id"))]
                 for u in result.get("data") or []]
        offset = result.get("next_offset")
    if not rows:
        typer.echo("no users", err=True)
        return
    _table(rows, ["USERNAME", "EMAIL", "NAME", "STATE", "ID"])


@identity_app.command("revoke-consent")
def revoke_consent(
    username: Annotated[str, typer.Argument(help="The user (username or id).")],
    client_id: Annotated[str, typer.Argument(help="The client.")],
    admin_url: AdminUrlOption = DEFAULT_ADMIN_URL,
    token: TokenOption = None,
) -> None:
    """Forget a user's consent to a client and revoke the client's refresh tokens."""
    path = f"/identity/users/{_segment(username)}/consents/{_segment(client_id)}"
    admin_request("DELETE", admin_url, path, token)
    typer.echo(f"revoked {username}'s consent to {client_id}")


# ---------------------------------------------------------------- keys


@identity_app.command("rotate-keys")
def rotate_keys(
    overlap: Annotated[int | None, typer.Option(
        "--overlap", min=0, help="Seconds the old keys stay published (default: the "
        "longest token lifetime; 0 after a key leak).", show_default=False)] = None,
    admin_url: AdminUrlOption = DEFAULT_ADMIN_URL,
    token: TokenOption = None,
) -> None:
    """New signing keys; the old ones verify for a while, then leave the JWKS."""
    params = {"overlap": str(overlap)} if overlap is not None else None
    result = admin_request("POST", admin_url, "/identity/keys/rotate", token, params=params)
    for kid in result.get("kids") or []:
        typer.echo(f"new key {kid}")
    retired = result.get("retired") or []
    typer.echo(f"{len(retired)} old key(s) stay published for {result.get('overlap')} s",
               err=True)


register_roster(identity_app)
