"""HTTP/1.1 bytes on the wire: status lines, header blocks, chunk framing.

Pure functions over bytes; the connection classes call them.
"""

from __future__ import annotations

from http import HTTPStatus

from campusgate.proxy.context import HeaderList

__all__ = [
    "HOP_BY_HOP",
    "LAST_CHUNK",
    "chunk",
    "connection_tokens",
    "header_lines",
    "request_head",
    "response_head",
    "status_line",
]

_REASONS: dict[int, bytes] = {s.value: s.phrase.encode() for s in HTTPStatus}

#: Headers that describe one connection and are never forwarded (RFC 9110 7.6.1).
HOP_BY_HOP = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
        b"transfer-encoding", b"upgrade", b"proxy-authenticate", b"proxy-authorization",
    }
)

LAST_CHUNK = b"0\r\n\r\n"


_STATUS_LINES: dict[int, bytes] = {
    code: b"HTTP/1.1 %d %s\r\n" % (code, reason) for code, reason in _REASONS.items()
}


def status_line(status: int, version: bytes = b"1.1") -> bytes:
    if version == b"1.1":
        line = _STATUS_LINES.get(status)
        if line is not None:
            return line
    return b"HTTP/%s %d %s\r\n" % (version, status, _REASONS.get(status, b"Unknown"))


def header_lines(parts: list[bytes], headers: HeaderList) -> None:
    """Append ``name: value\\r\\n`` for each header to ``parts``."""
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")


def response_head(status: int, headers: HeaderList) -> bytes:
    parts = [status_line(status)]
    header_lines(parts, headers)
    parts.append(b"\r\n")
    return b"".join(parts)


def request_head(method: bytes, target: bytes, headers: HeaderList) -> bytes:
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    header_lines(parts, headers)
    parts.append(b"\r\n")
    return b"".join(parts)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


_NO_TOKENS: frozenset[bytes] = frozenset()


def connection_tokens(headers: HeaderList) -> frozenset[bytes] | set[bytes]:
    """Lower-case tokens of all ``Connection`` headers (they name more hop-by-hop headers)."""
    tokens: set[bytes] | None = None
    for name, value in headers:
        if name == b"connection":
            if tokens is None:
                tokens = set()
            for token in value.split(b","):
                token = token.strip().lower()
                if token:
                    tokens.add(token)
    return _NO_TOKENS if tokens is None else tokens
