"""The AWS event stream frame decoder (ai/providers/eventstream.py) against botocore's
documented frames (``tests/unit/test_eventstream.py``), in every split, and its
refusals of corrupt frames."""

from __future__ import annotations

import pytest
from ai_kit import splits

from campusgate.ai.providers.eventstream import (
    EventStreamDecoder,
    EventStreamError,
    Message,
    encode_message,
)

# (frame, headers, payload), byte for byte from botocore's test suite.
FRAMES = [
    (b"\x00\x00\x00\x10\x00\x00\x00\x00\x05\xc2H\xeb}\x98\xc8\xff", {}, b""),
    (b"\x00\x00\x00\x1d\x00\x00\x00\x00\xfdR\x8cZ{'foo':'bar'}\xc3e96", {},
     b"{'foo':'bar'}"),
    (b"\x00\x00\x00=\x00\x00\x00 \x07\xfd\x83\x96\x0ccontent-type\x07\x00\x10"
     b"application/json{'foo':'bar'}\x8d\x9c\x08\xb1",
     {"content-type": "application/json"}, b"{'foo':'bar'}"),
    (b"\x00\x00\x00\x17\x00\x00\x00\x07)\x86\x01X\x04byte\x02\xff\xc2\xf8i\xdc",
     {"byte": -1}, b""),
    (b"\x00\x00\x00\x1e\x00\x00\x00\x0e]J\xdb\x8d\x04long\x05\xff\xff\xff\xff\xff\xff"
     b"\xff\xffK\xc22\xda", {"long": -1}, b""),
    (b"\x00\x00\x00\x62\x00\x00\x00\x52\x03\xb5\xcb\x9c"
     b"\x010\x00\x011\x01\x012\x02\x02\x013\x03\x00\x03"
     b"\x014\x04\x00\x00\x00\x04\x015\x05\x00\x00\x00\x00\x00\x00\x00\x05"
     b"\x016\x06\x00\x05bytes\x017\x07\x00\x04utf8"
     b"\x018\x08\x00\x00\x00\x00\x00\x00\x00\x08\x019\x090123456789abcdef"
     b"\x63\x35\x36\x71",
     {"0": True, "1": False, "2": 2, "3": 3, "4": 4, "5": 5, "6": b"bytes", "7": "utf8",
      "8": 8, "9": b"0123456789abcdef"}, b""),
    (b"\x00\x00\x00\x52\x00\x00\x00\x42\xbf\x23\x63\x7e"
     b"\x0d:message-type\x07\x00\x05error\x0b:error-code\x07\x00\x04code"
     b"\x0e:error-message\x07\x00\x07message\x6b\x6c\xea\x3d",
     {":message-type": "error", ":error-code": "code", ":error-message": "message"}, b""),
]
STREAM = b"".join(frame for frame, _, _ in FRAMES)
EXPECTED = [Message(headers, payload) for _, headers, payload in FRAMES]


def test_documented_frames_decode_in_every_split() -> None:
    for pieces in splits(STREAM):
        decoder = EventStreamDecoder()
        got: list[Message] = []
        for piece in pieces:
            got += decoder.feed(piece)
        assert got == EXPECTED
        assert not decoder.pending


@pytest.mark.parametrize("index", [0, 1, 2, 6])
def test_the_encoder_writes_the_documented_bytes(index: int) -> None:
    frame, headers, payload = FRAMES[index]
    assert encode_message(headers, payload) == frame


@pytest.mark.parametrize(("frame", "words"), [
    (b"\x01\x00\x00\x1d\x00\x00\x00\x00\xfdR\x8cZ{'foo':'bar'}\xc3e96", "prelude"),
    (b"\x00\x00\x00\x1d\x00\x00\x00\x00\xfdR\x8cZ{'foo':'bar'\x8d\xc3e96", "message"),
    (b"\x00\x00\x00=\x00\x00\x00 \x07\xfd\x83\x96\x0ccontent+type\x07\x00\x10"
     b"application/json{'foo':'bar'}\x8d\x9c\x08\xb1", "message"),
    (b"\x00\x00\x00\x24\x00\x00\x00\x14\x4b\xb9\x82\xd0"
     b"\x04test\x04asdf\x04test\x04asdf\xf3\xf4\x75\x63", "duplicate"),
])
def test_corrupt_frames_are_refused(frame: bytes, words: str) -> None:
    with pytest.raises(EventStreamError, match=words):
        EventStreamDecoder().feed(frame)


def test_a_cut_frame_is_pending() -> None:
    decoder = EventStreamDecoder()
    assert decoder.feed(FRAMES[2][0][:-3]) == []
    assert decoder.pending
