"""``log-bodies``: put a route's request and response bodies in its access records,
capped and redacted.  Bodies are never recorded unless a route (or service, consumer)
opts in with this plugin.

Each body is captured when its content type is one of ``content_types`` (JSON and
text by default) and it is not compressed; it is decoded as UTF-8 (bad bytes
replaced), named JSON fields are masked (``password``, ``token``, ``authorization``,
...: by exact name, any depth, case and ``-``/``_`` ignored; in text that is not
valid JSON, ``"name": "value"`` and ``name=value`` pairs), personal data is replaced
with the patterns of the AI redaction (``email``, ``phone``, ``ssn``, and any
``patterns``), and the result is cut at ``max_bytes``.

It uses the body phases (:mod:`campusgate.proxy.bodies`), which hold a whole body:
so only bodies of at most ``max_buffer_bytes`` are captured whole.  A larger (or
chunked) upload streams upstream as it came, and the chunks going by are watched
(``request_tap``): its first ``max_bytes`` are recorded in the log phase.  A larger
response is gathered until it outgrows the buffer (``taps_overflow``: a declared
``Content-Length`` over it too), then goes out untouched, and its first
``max_bytes`` are recorded (``response_overflow``).  A body captured in part loses
its last, cut-off word before masking and redaction, so a secret or an e-mail
address cut in two is not recorded half.  Event streams (``text/event-stream``)
are never held back: they are noted, not captured.

Leaves ``ctx.vars["log.bodies"] = {"request": str | None, "response": str | None}``
for the access record.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any, Final

from pydantic import Field, field_validator

from campusgate.ai.redaction import Redactor
from campusgate.config.ai_redaction import AiRedaction, RedactionPattern
from campusgate.plugins.base import Plugin, PluginConfig, PluginEnv
from campusgate.proxy.context import HeaderList, RequestContext, header_value

__all__ = ["BODIES", "LogBodiesConfig", "LogBodiesPlugin"]

#: The ``ctx.vars`` key the record builder reads.
BODIES: Final = "log.bodies"
#: The ``ctx.vars`` key of a request body watched as it streams (:class:`_Tap`).
TAP: Final = "log.bodies.tap"
#: The last, cut-off word of a body captured in part (dropped: see the module doc).
_CUT_WORD = re.compile(r"[^\s\"'&=:;,{}\[\]()<>]+\Z")
MASK: Final = "***"
DEFAULT_FIELDS = (
    "password", "passwd", "pass", "new_password", "old_password", "secret",
    "client_secret", "token", "access_token", "refresh_token", "id_token",
    "authorization", "api_key", "apikey", "x_api_key", "cookie", "set_cookie",
    "credential", "credentials", "private_key", "session", "ssn",
)


def _field_key(name: str) -> str:
    return name.lower().replace("-", "_")


class LogBodiesConfig(PluginConfig):
    #: Characters kept of each body (after masking and redaction).
    max_bytes: int = Field(default=4096, ge=64, le=1024 * 1024)
    #: Bodies larger than this are not held back to be captured (they stream on).
    max_buffer_bytes: int = Field(default=64 * 1024, ge=64, le=16 * 1024 * 1024)
    #: Capture the request body (as forwarded upstream).
    request: bool = True
    #: Capture the response body (as sent to the client).
    response: bool = True
    #: Media types captured: exact (``application/json``), ``type/*`` or ``*/*+json``.
    content_types: list[str] = Field(
        default_factory=lambda: ["application/json", "*/*+json", "text/*"], min_length=1)
    #: JSON fields (and form fields) whose values are replaced by ``***``.
    mask_fields: list[str] = Field(default_factory=lambda: list(DEFAULT_FIELDS))
    #: Kinds of personal data replaced (see ``ai.redaction``; ``name`` is not offered).
    redact: list[str] = Field(default_factory=lambda: ["email", "phone", "ssn"])
    #: More named patterns (a district's student ids...), as in ``ai.redaction``.
    patterns: list[RedactionPattern] = Field(default_factory=list, max_length=100)

    @field_validator("redact")
    @classmethod
    def _kinds(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - {"email", "phone", "ssn"})
        if unknown:
            raise ValueError(f"unknown kinds {unknown}: email, phone and ssn are offered")
        return value

    @field_validator("content_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.fullmatch(r"(\*|[\w.+-]+)/(\*|\*\+[\w.-]+|[\w.+-]+)", item):
                raise ValueError(f"{item!r} is not a media type such as text/* or "
                                 "application/json")
        return [item.lower() for item in value]


class LogBodiesPlugin(Plugin):
    name = "log-bodies"
    priority = 5
    config_model = LogBodiesConfig
    warn_unbuffered = False
    taps_overflow = True

    def __init__(self, config: LogBodiesConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self.max_bytes = config.max_bytes
        self.body_limit = config.max_buffer_bytes
        self.types = tuple(config.content_types)
        self.fields = frozenset(_field_key(f) for f in config.mask_fields)
        self.redactor = Redactor(AiRedaction(enabled=True, kinds=config.redact,
                                             patterns=config.patterns))
        names = "|".join(re.escape(f).replace("_", "[-_]") for f in sorted(self.fields))
        self.loose = re.compile(
            rf'(?i)("(?:{names})"\s*:\s*)"(?:[^"\\]|\\.)*"|\b((?:{names})=)[^&\s]*'
        ) if names else None

    def runs(self, phase: str) -> bool:
        config = self.config
        assert isinstance(config, LogBodiesConfig)
        if phase in ("request_body", "request_tap", "log"):
            return config.request
        if phase == "response_body":
            return config.response
        return super().runs(phase)

    # ------------------------------------------------------------ which bodies
    def _captured_type(self, headers: HeaderList) -> str | None:
        """Why a body of these headers is noted instead of captured ("" to capture
        it), or None when its type is not captured at all."""
        raw = header_value(headers, b"content-type")
        media = (raw or b"").split(b";", 1)[0].strip().decode("latin-1").lower()
        if not any(_matches(media, pattern) for pattern in self.types):
            return None
        if media == "text/event-stream":
            return "[not captured: an event stream]"
        encoding = header_value(headers, b"content-encoding")
        if encoding not in (None, b"identity"):
            return f"[not captured: {encoding.decode('latin-1')}-encoded]"
        return ""

    def _note(self, variables: dict[str, Any], headers: HeaderList, what: str) -> bool:
        """Decide on one body: True to hold it.  The note goes in the record; a
        capture replaces it."""
        reason = self._captured_type(headers)
        if reason is None:
            return False
        raw = header_value(headers, b"content-length")
        length = int(raw) if raw is not None and raw.isdigit() else None
        held = False
        if reason:
            pass  # an event stream, an encoded body
        elif raw is not None and length is None:
            reason = f"[not captured: {raw.decode('latin-1')} bytes]"
        elif what == "request" and (length is None or length > self.body_limit):
            variables[TAP] = _Tap()  # it streams on: its first bytes are watched
            reason = ("[not captured: a body without a declared length]" if length is None
                      else f"[not captured: {length} bytes]")
        else:  # held; a response over the buffer overflows (taps_overflow)
            held = True
            reason = f"[not captured: more than {self.body_limit} bytes]"
        _bodies_of(variables)[what] = reason
        return held

    def wants_request_body(self, ctx: RequestContext) -> bool:
        return self._note(ctx.vars, ctx.headers, "request")

    def wants_response_body(self, ctx: RequestContext, status: int,
                            headers: HeaderList) -> bool:
        return self._note(ctx.vars, headers, "response")

    def request_tap(self, ctx: RequestContext, data: bytes) -> None:
        tap: _Tap | None = ctx.vars.get(TAP)
        if tap is not None:
            tap.seen += len(data)
            room = self.max_bytes - len(tap.prefix)
            if room > 0:
                tap.prefix += data[:room]

    def log(self, ctx: RequestContext) -> None:
        """A watched request body: its first ``max_bytes`` go in the record."""
        tap: _Tap | None = ctx.vars.pop(TAP, None)
        if tap is None or not tap.seen:
            return
        if tap.seen == len(tap.prefix):  # the whole body fitted in the prefix
            _bodies_of(ctx.vars)["request"] = self.capture(bytes(tap.prefix))
            return
        text = self.capture(bytes(tap.prefix), partial=True)
        _bodies_of(ctx.vars)["request"] = f"{text}...[captured in part: {tap.seen} bytes]"

    # ------------------------------------------------------------ capture
    def request_body(self, ctx: RequestContext, body: bytes) -> bytes:
        _bodies_of(ctx.vars)["request"] = self.capture(body) if body else None
        return body

    def response_body(self, ctx: RequestContext, status: int, headers: HeaderList,
                      body: bytes) -> bytes:
        _bodies_of(ctx.vars)["response"] = self.capture(body) if body else None
        return body

    def response_overflow(self, ctx: RequestContext, status: int, headers: HeaderList,
                          prefix: bytes, size: int | None = None) -> None:
        """A response over the buffer goes out untouched: its first ``max_bytes`` are
        recorded (masked, redacted) and marked as a part."""
        text = self.capture(prefix[:self.max_bytes], partial=True)
        told = f"{size} bytes" if size is not None else f"more than {self.body_limit} bytes"
        _bodies_of(ctx.vars)["response"] = f"{text}...[captured in part: {told}]"

    def capture(self, body: bytes, *, partial: bool = False) -> str:
        """``body`` as recorded: decoded, fields masked, redacted, cut.  ``partial``:
        the first bytes of a longer body, whose last word is cut off (dropped)."""
        text = body.decode("utf-8", "replace")
        if partial:
            text = _CUT_WORD.sub("", text)
        masked = self._mask_json(text)
        if masked is None and self.loose is not None:
            masked = self.loose.sub(_loose_mask, text)
        text, _ = self.redactor.redact_text(masked if masked is not None else text)
        if len(text) > self.max_bytes:
            text = text[:self.max_bytes] if partial else \
                f"{text[:self.max_bytes]}...[cut: {len(body)} bytes]"
        return text

    def _mask_json(self, text: str) -> str | None:
        stripped = text.lstrip()
        if not stripped.startswith(("{", "[")):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        hits: Counter[str] = Counter()
        masked = _mask(value, self.fields, hits)
        return json.dumps(masked, ensure_ascii=False) if hits else text


def _matches(media: str, pattern: str) -> bool:
    if pattern == media or pattern == "*/*":
        return True
    kind, _, sub = pattern.partition("/")
    if sub == "*":
        return media.startswith(kind + "/")
    if sub.startswith("*+"):
        return (kind == "*" or media.startswith(kind + "/")) and media.endswith(sub[1:])
    return False


def _mask(value: Any, fields: frozenset[str], hits: Counter[str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, str) and _field_key(key) in fields:
                out[key] = MASK
                hits["field"] += 1
            else:
                out[key] = _mask(item, fields, hits)
        return out
    if isinstance(value, list):
        return [_mask(item, fields, hits) for item in value]
    return value


def _loose_mask(found: re.Match[str]) -> str:
    if found[1] is not None:
        return f'{found[1]}"{MASK}"'
    return f"{found[2]}{MASK}"


class _Tap:
    """A request body streaming upstream: its first bytes, and how many went by."""

    __slots__ = ("prefix", "seen")

    def __init__(self) -> None:
        self.prefix = bytearray()
        self.seen = 0


def _bodies_of(variables: dict[str, Any]) -> dict[str, str | None]:
    bodies: dict[str, str | None] | None = variables.get(BODIES)
    if bodies is None:
        bodies = variables[BODIES] = {"request": None, "response": None}
    return bodies


PLUGIN = LogBodiesPlugin
