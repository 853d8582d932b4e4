"""Alert notifications: the payloads (pure) and their delivery over HTTP.

``json`` webhooks get::

    {"version": 1, "source": "campusgate", "state": "firing" | "resolved" | "test",
     "rule": "slow-routes", "kind": "latency-regression", "severity": "warning",
     "subject": {"route": "roster"}, "summary": "p95 latency of route roster is ...",
     "value": 312.0, "baseline": 98.5, "threshold": 197.0,
     "time": "2026-11-28T10:15:00Z", "fired_at": "2026-11-28T10:15:00Z",
     "details": {...}}

``slack`` webhooks get ``{"text": <summary>, "blocks": [header, section, context]}``
(Slack's incoming webhooks, and Mattermost, Rocket.Chat, Teams workflows that take
the same).  Delivery runs in its own task per notification, never in the
evaluation's way; a connection error, a 5xx or a 429 is retried with backoff (the
retry loop of the http sink, ``observe/sinks/_post.py``).  A failure is logged with
the webhook's name and the URL without its path's secrets, never its headers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from campusgate.config.observe_alerts import Webhook
from campusgate.config.observe_sinks import client_context
from campusgate.observe.sinks._post import (
    DeliveryError,
    Poster,
    RetryPolicy,
    Sleep,
    public_url,
)

__all__ = ["RETRY_STATUSES", "Notifier", "json_payload", "payload_for", "slack_payload"]

log = logging.getLogger("campusgate.observe.alerts")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_ICONS = {"firing": ":rotating_light:", "resolved": ":white_check_mark:", "test": ":bell:"}


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def json_payload(event: Mapping[str, Any]) -> dict[str, Any]:
    """The ``json`` format of an event (a row of ``alert_events`` as a dict)."""
    return {"version": 1, "source": "campusgate", "state": event["state"],
            "rule": event["rule"], "kind": event["kind"], "severity": event["severity"],
            "subject": dict(event["subject"]), "summary": event["message"],
            "value": event.get("value"), "baseline": event.get("baseline"),
            "threshold": event.get("threshold"), "time": _iso(event["time"]),
            "fired_at": _iso(event.get("fired_at")), "details": dict(event.get("details", {}))}


def slack_payload(event: Mapping[str, Any]) -> dict[str, Any]:
    """The Slack-compatible format: ``text`` for notifications, ``blocks`` to show."""
    state = event["state"]
    title = f"{_ICONS.get(state, '')} [{state.upper()}] {event['rule']}".strip()
    subject = ", ".join(f"{k} `{v}`" for k, v in dict(event["subject"]).items()) or "-"
    fields = [f"*{event['message']}*", f"*Subject:* {subject}",
              f"*Severity:* {event['severity']}"]
    numbers = [(name, event.get(name)) for name in ("value", "baseline", "threshold")]
    shown = ", ".join(f"{name} {value:g}" for name, value in numbers if value is not None)
    if shown:
        fields.append(f"*Numbers:* {shown}")
    return {
        "text": f"[{state.upper()}] {event['rule']}: {event['message']}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150],
                                        "emoji": True}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(fields)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": (
                f"campusgate · {event['kind']} · {_iso(event['time'])}")}]},
        ],
    }


def payload_for(webhook: Webhook, event: Mapping[str, Any]) -> bytes:
    body = slack_payload(event) if webhook.format == "slack" else json_payload(event)
    return json.dumps(body, separators=(",", ":"), default=str).encode()


class Notifier:
    """Sends events to webhooks in background tasks; :meth:`close` waits for them."""

    def __init__(self, webhooks: list[Webhook], *, sleep: Sleep = asyncio.sleep) -> None:
        self._webhooks = {w.name: w for w in webhooks}
        self._posters: dict[str, Poster] = {}
        self._sleep = sleep
        self._tasks: set[asyncio.Task[bool]] = set()

    def _poster(self, webhook: Webhook) -> Poster:
        poster = self._posters.get(webhook.name)
        if poster is None:
            policy = RetryPolicy(webhook.retries, webhook.retry_backoff, 60.0, RETRY_STATUSES)
            poster = self._posters[webhook.name] = Poster(
                headers=webhook.headers, timeout=webhook.timeout, policy=policy,
                gzip_above=None, sleep=self._sleep,
                tls=client_context(webhook.tls))
        return poster

    def notify(self, names: list[str], event: Mapping[str, Any]) -> list[asyncio.Task[bool]]:
        """Start sending ``event`` to each webhook of ``names`` (returns the tasks)."""
        tasks = []
        for name in names:
            task = asyncio.get_running_loop().create_task(
                self.send(self._webhooks[name], event), name=f"campusgate-alert-{name}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            tasks.append(task)
        return tasks

    async def send(self, webhook: Webhook, event: Mapping[str, Any]) -> bool:
        """Deliver one event; False (logged) when the webhook did not take it."""
        try:
            await self._poster(webhook).post(webhook.url, payload_for(webhook, event),
                                             "application/json")
        except DeliveryError as exc:
            # The URL's path may be the secret (Slack's are): name the host only.
            host = urlsplit(webhook.url).netloc.rpartition("@")[2]
            reason = str(exc).replace(public_url(webhook.url), host)
            log.warning("alert webhook %s was not delivered: %s", webhook.name, reason)
            return False
        return True

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for poster in self._posters.values():
            await poster.close()
        self._posters.clear()
