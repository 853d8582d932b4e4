"""The ``campusgate`` commands' client of the admin API: the ``--admin-url`` and
``--token`` options, one request helper, and readable errors.

User errors (an unreachable admin API, a refused change) end the command with one
message on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

import httpx
import typer

__all__ = ["DEFAULT_ADMIN_URL", "AdminUrlOption", "TokenOption", "admin_request",
           "describe_error", "fail"]

DEFAULT_ADMIN_URL = "http://127.0.0.1:8081"

AdminUrlOption = Annotated[
    str, typer.Option("--admin-url", envvar="CAMPUSGATE_ADMIN_URL", help="Admin API base URL.")
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="CAMPUSGATE_ADMIN_TOKEN", help="Admin API token.", show_default=False
    ),
]


def fail(message: str) -> NoReturn:
    """End the command: ``message`` on stderr, exit status 1."""
    typer.echo(message, err=True)
    raise typer.Exit(1)


def admin_request(
    method: str,
    admin_url: str,
    path: str,
    token: str | None,
    *,
    json: Any = None,
    params: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Call the admin API; return its JSON object (``{}`` for a 204 No Content), or end
    the command with its error."""
    url = admin_url.rstrip("/") + path
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(timeout=30.0) as client:
            response = client.request(method, url, headers=headers, json=json, params=params)
    except httpx.ConnectError:
        fail(
            f"cannot connect to the admin API at {admin_url} "
            "(is campusgate running? set --admin-url or CAMPUSGATE_ADMIN_URL)"
        )
    except httpx.TimeoutException:
        fail(f"the admin API at {admin_url} did not answer in time")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        fail(f"admin API request to {url} failed: {exc}")
    if response.status_code == 204:
        return {}
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_error:
        fail(describe_error(response.status_code, body, response.text))
    if not isinstance(body, dict):
        fail(f"the admin API at {admin_url} answered {path} with something that is not JSON")
    return body


def describe_error(status: int, body: Any, text: str) -> str:
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
