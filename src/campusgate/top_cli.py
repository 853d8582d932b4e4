"""``campusgate top``: live traffic in the terminal, read from the admin API's
analytics (``/observe/analytics``): requests/s, errors, p50/p99 latency, and the top
routes and consumers over the last minutes, redrawn every second with ``rich``."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from campusgate.admin_client import DEFAULT_ADMIN_URL, AdminUrlOption, TokenOption, admin_request

__all__ = ["register", "top"]

_BASE = "/observe/analytics"


def _fetch(admin_url: str, token: str | None, window: int) -> dict[str, Any]:
    last = {"last": f"{window}m"}
    series = admin_request("GET", admin_url, f"{_BASE}/series", token, params={
        **last, "step": "1m", "metric": "requests,errors,p50,p99"})
    percentiles = admin_request("GET", admin_url, f"{_BASE}/percentiles", token, params=last)
    routes = admin_request("GET", admin_url, f"{_BASE}/top", token, params={
        **last, "by": "route", "limit": "8", "include": "errors,p99"})
    consumers = admin_request("GET", admin_url, f"{_BASE}/top", token, params={
        **last, "by": "consumer", "limit": "8", "include": "errors,p99"})
    return {"series": series, "percentiles": percentiles, "routes": routes,
            "consumers": consumers}


def _number(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def render(data: dict[str, Any], window: int, now: float) -> Group:
    """One frame from the analytics answers."""
    points = data["series"]["points"]
    latest = points[-1]["values"] if points else {}
    elapsed = max(1.0, now - points[-1]["time"]) if points else 60.0
    total = sum(p["values"]["requests"] or 0 for p in points)
    errors = sum(p["values"]["errors"] or 0 for p in points)
    latency = data["percentiles"]["latency_ms"]
    summary = Table(title=f"campusgate top -- last {window} min", show_header=True)
    for column in ("req/s (this min)", f"req/s ({window} min)", "errors", "error %",
                   "p50 ms", "p99 ms"):
        summary.add_column(column, justify="right")
    summary.add_row(
        _number((latest.get("requests") or 0) / min(60.0, elapsed)),
        _number(total / (window * 60.0)), _number(errors),
        _number(100.0 * errors / total if total else 0.0),
        _number(latency.get("p50"), 2), _number(latency.get("p99"), 2))
    tables: list[Table] = [summary]
    for title, key, name in (("Top routes", "routes", "route"),
                             ("Top consumers", "consumers", "consumer")):
        table = Table(title=title)
        for column in (name, "requests", "errors", "p99 ms"):
            table.add_column(column, justify="left" if column == name else "right")
        for item in data[key]["items"]:
            table.add_row(item[name] or "(none)", _number(item["requests"]),
                          _number(item["errors"]), _number(item["p99"], 2))
        tables.append(table)
    return Group(*tables)


def top(
    admin_url: AdminUrlOption = DEFAULT_ADMIN_URL,
    token: TokenOption = None,
    window: Annotated[int, typer.Option(min=1, max=60, help="Minutes shown.")] = 5,
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between frames.")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
) -> None:
    """Live requests/s, errors, latency, top routes and consumers."""
    console = Console()
    if once:
        console.print(render(_fetch(admin_url, token, window), window, time.time()))
        return
    with Live(console=console, auto_refresh=False, screen=False) as live:
        try:
            while True:
                live.update(render(_fetch(admin_url, token, window), window, time.time()),
                            refresh=True)
                time.sleep(interval)
        except KeyboardInterrupt:
            return


def register(app: typer.Typer) -> None:
    """Add ``campusgate top``."""
    app.command("top")(top)
