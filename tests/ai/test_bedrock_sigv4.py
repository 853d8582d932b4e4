"""SigV4 (ai/providers/sigv4.py) against AWS's published test suite -- the vectors in
botocore's ``tests/unit/auth/aws4_testsuite`` (AKIDEXAMPLE, 20150830T123600Z,
us-east-1, service "service") -- and against botocore's own signature of a Bedrock
Converse request (computed with botocore 1.44 ``SigV4Auth``, service ``bedrock``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from campusgate.ai.providers.sigv4 import canonical_query, sign

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE: dict[str, Any] = {"access_key": "AKIDEXAMPLE", "secret_key": SECRET,
                         "region": "us-east-1", "service": "service",
                         "now": datetime(2015, 8, 30, 12, 36, tzinfo=UTC),
                         "content_sha256_header": False}
HOST = "https://example.amazonaws.com"
STS_TOKEN = ("AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFq"
             "wAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp"
             "2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6"
             "d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4"
             "rvx3iSIlTJabIQwj2ICCR/oLxBA==")

CASES = [  # (suite case, method, path and query, headers, body, token, signed, signature)
    ("get-vanilla", "GET", "/", {}, b"", None, "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ("post-vanilla", "POST", "/", {}, b"", None, "host;x-amz-date",
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    ("get-vanilla-query-order-key-case", "GET", "/?Param2=value2&Param1=value1", {}, b"",
     None, "host;x-amz-date",
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    ("get-vanilla-query-order-encoded", "GET",
     "/?Param-3=Value3&Param=Value2&%E1%88%B4=Value1", {}, b"", None, "host;x-amz-date",
     "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac"),
    ("get-unreserved", "GET",
     "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", {}, b"", None,
     "host;x-amz-date", "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
    ("get-header-value-trim", "GET", "/",
     {"My-Header1": " value1", "My-Header2": ' "a   b   c"'}, b"", None,
     "host;my-header1;my-header2;x-amz-date",
     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
    ("post-x-www-form-urlencoded", "POST", "/",
     {"Content-Type": "application/x-www-form-urlencoded"}, b"Param1=value1", None,
     "content-type;host;x-amz-date",
     "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
    ("get-vanilla-with-session-token", "GET", "/", {}, b"",
     "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
     "host;x-amz-date;x-amz-security-token",
     "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"),
    ("post-sts-header-before", "POST", "/", {}, b"", STS_TOKEN,
     "host;x-amz-date;x-amz-security-token",
     "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
]


@pytest.mark.parametrize(("case", "method", "target", "headers", "body", "token",
                          "signed", "signature"), CASES, ids=[c[0] for c in CASES])
def test_the_aws_test_suite(case: str, method: str, target: str, headers: dict[str, str],
                            body: bytes, token: str | None, signed: str,
                            signature: str) -> None:
    added = sign(method, HOST + target, headers, body, session_token=token, **SUITE)
    assert added["x-amz-date"] == "20150830T123600Z"
    assert added["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        f"SignedHeaders={signed}, Signature={signature}")
    assert added.get("x-amz-security-token") == token
    assert "x-amz-content-sha256" not in added


def test_a_bedrock_request_signs_as_botocore_does() -> None:
    """The model id's ``:`` is ``%3A`` on the wire and ``%253A`` in the canonical URI."""
    body = (b'{"messages":[{"role":"user","content":[{"text":"Hello"}]}],'
            b'"inferenceConfig":{"maxTokens":64}}')
    added = sign("POST", "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
                 "anthropic.claude-3-haiku-20240307-v1%3A0/converse",
                 {"content-type": "application/json"}, body,
                 access_key="AKIDEXAMPLE", secret_key=SECRET,
                 session_token="SESSIONTOKEN", region="us-east-1", service="bedrock",
                 now=datetime(2024, 5, 1, 12, tzinfo=UTC), content_sha256_header=False)
    assert added == {
        "x-amz-date": "20240501T120000Z", "x-amz-security-token": "SESSIONTOKEN",
        "authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-east-1/"
        "bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date;"
        "x-amz-security-token, Signature="
        "e8f4877beeb8576cd86f34be21682bdaae05ac3865078ad7444969fab2651c6d"}


def test_the_payload_hash_header_is_signed_when_sent() -> None:
    added = sign("GET", HOST + "/", {}, b"", **{**SUITE, "content_sha256_header": True})
    assert added["x-amz-content-sha256"] == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert "SignedHeaders=host;x-amz-content-sha256;x-amz-date," in added["authorization"]


def test_query_values_are_reencoded_and_sorted() -> None:
    assert canonical_query("b=2&a=x y&a=%2F&c") == "a=%2F&a=x%20y&b=2&c="
