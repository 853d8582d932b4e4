"""HTTP Basic client credentials (RFC 6749 2.3.1) read back intact by the server side
campusgate itself runs (Authlib's parser), whatever the secret holds."""

from __future__ import annotations

import base64

import pytest
from authlib.oauth2.rfc6749.util import (  # type: ignore[import-untyped]
    extract_basic_authorization,
)

from campusgate.auth.client_basic import basic_authorization


@pytest.mark.parametrize(("client_id", "secret"), [
    ("lms", "plain-secret-0123456789"),
    ("app:one", "has:colons:in:it"),
    ("app", "100% sure + space & more"),
    ("élève", "pässwörd-ß"),
])
def test_credentials_read_back_intact(client_id: str, secret: str) -> None:
    header = basic_authorization(client_id, secret)
    assert header.startswith("Basic ")
    assert extract_basic_authorization({"Authorization": header}) == (client_id, secret)


def test_each_part_is_form_encoded_before_joining() -> None:
    raw = base64.b64decode(basic_authorization("a:b", "c d").removeprefix("Basic "))
    assert raw == b"a%3Ab:c%20d"
