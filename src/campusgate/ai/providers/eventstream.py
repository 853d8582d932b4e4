"""The AWS event stream encoding (``application/vnd.amazon.eventstream``), sans-IO.

Bedrock's ``ConverseStream`` (and every AWS streaming API) frames its events so
("Event stream encoding", AWS Transcribe / S3 Select developer guides; botocore's
``eventstream.py``)::

    total length   uint32 big-endian (the whole message, these 4 bytes included)
    headers length uint32
    prelude CRC    CRC32 of the 8 bytes above
    headers        name length (uint8), name (UTF-8), value type (uint8), value
    payload        total - headers - 16 bytes
    message CRC    CRC32 of everything before it

Header value types: 0 true, 1 false, 2 int8, 3 int16, 4 int32, 5 int64 (signed,
big-endian), 6 bytes and 7 string (uint16 length first), 8 timestamp (int64
milliseconds), 9 UUID (16 bytes).  :class:`EventStreamDecoder` takes bytes in any
split and checks both CRCs; a bad frame is :class:`EventStreamError` (the stream cannot
be resynchronised after it).  :func:`encode_message` writes a frame (tests build their
streams with it).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

__all__ = [
    "MAX_MESSAGE",
    "EventStreamDecoder",
    "EventStreamError",
    "Header",
    "Message",
    "encode_message",
]

#: The largest message accepted (AWS caps a message at 16 MiB; headers at 128 KiB).
MAX_MESSAGE = 16 * 1024 * 1024
_PRELUDE = 12
_MIN_MESSAGE = 16

Header = bool | int | bytes | str


class EventStreamError(ValueError):
    """The bytes are not a well-formed event stream."""


@dataclass(frozen=True)
class Message:
    headers: dict[str, Header]
    payload: bytes

    def header(self, name: str) -> str:
        """A string header's value ("" when absent or not a string)."""
        value = self.headers.get(name)
        return value if isinstance(value, str) else ""


class EventStreamDecoder:
    """Incremental frame decoder: :meth:`feed` bytes, get whole messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> bool:
        """Whether a message has begun and not ended (a cut stream)."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        messages: list[Message] = []
        while len(self._buffer) >= _PRELUDE:
            total, headers_length, prelude_crc = struct.unpack_from(">III", self._buffer)
            if zlib.crc32(self._buffer[:8]) != prelude_crc:
                raise EventStreamError("event stream prelude checksum mismatch")
            if not _MIN_MESSAGE <= total <= MAX_MESSAGE or headers_length > total - 16:
                raise EventStreamError(f"event stream message length {total} "
                                       f"(headers {headers_length}) is out of bounds")
            if len(self._buffer) < total:
                break
            frame = bytes(self._buffer[:total])
            del self._buffer[:total]
            (message_crc,) = struct.unpack_from(">I", frame, total - 4)
            if zlib.crc32(frame[:-4]) != message_crc:
                raise EventStreamError("event stream message checksum mismatch")
            headers = _parse_headers(frame[_PRELUDE:_PRELUDE + headers_length])
            messages.append(Message(headers, frame[_PRELUDE + headers_length:-4]))
        return messages


def _parse_headers(data: bytes) -> dict[str, Header]:
    headers: dict[str, Header] = {}
    at = 0
    try:
        while at < len(data):
            size = data[at]
            name = data[at + 1:at + 1 + size].decode("utf-8")
            at += 1 + size
            kind = data[at]
            at += 1
            value: Header
            if kind in (0, 1):
                value = kind == 0
            elif kind in _INTS:
                width, fmt = _INTS[kind]
                (value,) = struct.unpack_from(fmt, data, at)
                at += width
            elif kind in (6, 7):
                (length,) = struct.unpack_from(">H", data, at)
                raw = data[at + 2:at + 2 + length]
                if len(raw) != length:
                    raise EventStreamError("an event stream header value is cut")
                value = raw.decode("utf-8") if kind == 7 else raw
                at += 2 + length
            elif kind == 9:
                value = data[at:at + 16]
                at += 16
            else:
                raise EventStreamError(f"unknown event stream header type {kind}")
            if name in headers:
                raise EventStreamError(f"duplicate event stream header {name!r}")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError(f"malformed event stream headers: {exc}") from exc
    if at != len(data):
        raise EventStreamError("event stream headers overrun their length")
    return headers


#: Integer header types: (width, struct format); 8 is a timestamp in milliseconds.
_INTS = {2: (1, ">b"), 3: (2, ">h"), 4: (4, ">i"), 5: (8, ">q"), 8: (8, ">q")}


def encode_message(headers: dict[str, Header], payload: bytes = b"") -> bytes:
    """One frame.  Strings, bytes and booleans keep their type; ints are int32."""
    encoded = bytearray()
    for name, value in headers.items():
        raw_name = name.encode("utf-8")
        encoded += bytes([len(raw_name)]) + raw_name
        if isinstance(value, bool):
            encoded += bytes([0 if value else 1])
        elif isinstance(value, int):
            encoded += b"\x04" + struct.pack(">i", value)
        else:
            raw = value.encode("utf-8") if isinstance(value, str) else value
            encoded += (b"\x07" if isinstance(value, str) else b"\x06")
            encoded += struct.pack(">H", len(raw)) + raw
    total = _MIN_MESSAGE + len(encoded) + len(payload)
    prelude = struct.pack(">II", total, len(encoded))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + bytes(encoded) + payload
    return body + struct.pack(">I", zlib.crc32(body))
