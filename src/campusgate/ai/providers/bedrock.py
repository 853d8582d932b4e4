"""AWS Bedrock through the Converse API: ``POST /model/{modelId}/converse`` and
``/converse-stream`` on ``https://bedrock-runtime.{region}.amazonaws.com``.

The request body is :mod:`.bedrock_request`'s; the stream is :mod:`.bedrock_stream`'s.
Authentication (botocore's service model: ``auth: [aws.auth#sigv4,
smithy.api#httpBearerAuth]``, signing name ``bedrock``): with ``api_key`` set it is
sent as a Bedrock API key, ``authorization: Bearer <key>`` (Bedrock user guide, "Use an
Amazon Bedrock API key"); otherwise the request is SigV4-signed (:mod:`.sigv4`) with
the deployment's ``aws_access_key_id``, ``aws_secret_access_key`` and, for temporary
credentials, ``aws_session_token``, in ``region`` (default ``us-east-1``).  The model
id (an inference profile or an ARN works too) is percent-encoded into the path: its
``:`` and ``/`` become ``%3A`` and ``%2F``.

Response (API reference, ``ConverseResponse``, ``TokenUsage``, ``StopReason``):
``output.message.content`` text blocks are joined into ``content``; ``toolUse``
blocks become ``tool_calls`` (``input`` serialised as the ``arguments`` string);
``reasoningContent`` is dropped.  ``usage.inputTokens`` excludes the tokens read from
and written to the prompt cache (``totalTokens`` = input + output + cacheRead +
cacheWrite), so ``prompt_tokens`` = inputTokens + cacheReadInputTokens +
cacheWriteInputTokens and ``cached_tokens`` = cacheReadInputTokens.  ``stopReason``:

=================================  ====================================================
``end_turn``, ``stop_sequence``    ``stop``
``max_tokens``                     ``length``
``model_context_window_exceeded``  ``length`` (the output was cut by the window)
``tool_use``                       ``tool_calls``
``guardrail_intervened``,          ``content_filter``
``content_filtered``
``malformed_model_output``,        ``ProviderError`` ``bad_response`` (retryable): the
``malformed_tool_use``             model's output cannot be used as it is
=================================  ====================================================

Errors (API reference "Common Errors" and each operation's "Errors"): the type is the
``x-amzn-errortype`` header (``ThrottlingException:http://...``; the body's
``__type`` otherwise), the message the body's ``message`` (or ``Message``).
Embeddings are not offered: Bedrock has them only through ``InvokeModel`` with a body
per model family.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from campusgate.ai.errors import ErrorKind, ProviderError, retry_after_seconds
from campusgate.ai.providers import sigv4
from campusgate.ai.providers.base import Deployment, StreamDecoder, UpstreamRequest
from campusgate.ai.providers.bedrock_request import converse_body
from campusgate.ai.types import ChatRequest, ChatResponse, Json, chat_response, usage

__all__ = ["BEDROCK", "BedrockTranslator", "error_kind", "finish_reason",
           "usage_of"]

#: ``StopReason`` -> ``finish_reason``; the malformed ones are errors (see above).
FINISH: dict[str, str] = {
    "end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
    "model_context_window_exceeded": "length", "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter", "content_filtered": "content_filter",
}

#: Error type (the exception's name, any case) -> kind.
ERROR_KINDS: dict[str, ErrorKind] = {
    "validationexception": "bad_request", "conflictexception": "bad_request",
    "accessdeniedexception": "permission", "resourcenotfoundexception": "not_found",
    "throttlingexception": "rate_limited",
    "servicequotaexceededexception": "rate_limited",
    "modelnotreadyexception": "overloaded", "serviceunavailableexception": "overloaded",
    "modeltimeoutexception": "timeout", "modelerrorexception": "server",
    "modelstreamerrorexception": "server", "internalserverexception": "server",
    # AWS's common errors: a key unknown, a signature or token wrong or expired.
    "unrecognizedclientexception": "auth", "invalidsignatureexception": "auth",
    "incompletesignatureexception": "auth", "expiredtokenexception": "auth",
    "missingauthenticationtokenexception": "auth", "invalidclienttokenid": "auth",
    "signaturedoesnotmatch": "auth",
}
_BY_STATUS: dict[int, ErrorKind] = {400: "bad_request", 401: "auth", 403: "permission",
                                    404: "not_found", 408: "timeout", 413: "bad_request",
                                    424: "server", 429: "rate_limited", 503: "overloaded"}
#: How Bedrock's ValidationException says the prompt is longer than the model takes.
_TOO_LONG = ("too long", "too many input tokens", "context window", "context length",
             "maximum context", "input length", "prompt is too long")


def finish_reason(stop_reason: str | None) -> str:
    """The canonical finish reason of a ``stopReason``; malformed output raises."""
    if stop_reason in FINISH:
        return FINISH[stop_reason]
    if stop_reason in ("malformed_model_output", "malformed_tool_use"):
        raise ProviderError("bad_response", f"the model's output was malformed "
                            f"(stopReason {stop_reason})", provider="bedrock",
                            code=stop_reason)
    raise ProviderError("bad_response", f"unknown stopReason {stop_reason!r}",
                        provider="bedrock")


def usage_of(token_usage: Json) -> Json:
    """Canonical usage from a ``TokenUsage``: prompt counts cache reads and writes;
    writes, billed apart (at 1.25x input for Claude), are also told in
    ``prompt_tokens_details.cache_write_tokens`` for :mod:`campusgate.ai.pricing`."""
    read = int(token_usage.get("cacheReadInputTokens") or 0)
    written = int(token_usage.get("cacheWriteInputTokens") or 0)
    prompt = int(token_usage.get("inputTokens") or 0) + read + written
    return usage(prompt, int(token_usage.get("outputTokens") or 0), read,
                 cache_write=written)


def error_kind(error_type: str, status: int, message: str) -> ErrorKind:
    """The kind of an error named ``error_type`` (``ThrottlingException`` or the
    stream's ``throttlingException``), else by status."""
    kind = ERROR_KINDS.get(error_type.lower())
    if kind is None:
        kind = _BY_STATUS.get(status, "server" if status >= 500 else "bad_request")
    if kind == "bad_request" and any(words in message.lower() for words in _TOO_LONG):
        return "context_length"
    return kind


class BedrockTranslator:
    name = "bedrock"
    default_base_url = "https://bedrock-runtime.{region}.amazonaws.com"

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        #: The signing time (a fixed one in tests).
        self._clock = clock or (lambda: datetime.now(UTC))

    def chat_request(self, request: ChatRequest, deployment: Deployment
                     ) -> UpstreamRequest:
        stream = bool(request.get("stream"))
        body = json.dumps(converse_body(request), separators=(",", ":")).encode()
        region = str(deployment.options.get("region") or "us-east-1")
        base = (deployment.base_url or self.default_base_url).format(region=region)
        url = (f"{base}/model/{quote(deployment.model, safe='')}/"
               f"{'converse-stream' if stream else 'converse'}")
        headers = {"content-type": "application/json",
                   "accept": "application/vnd.amazon.eventstream" if stream
                   else "application/json"}
        headers.update(deployment.extra_headers)
        headers.update(self._auth(url, headers, body, deployment, region))
        return UpstreamRequest("POST", url, headers, body, stream=stream)

    def _auth(self, url: str, headers: dict[str, str], body: bytes,
              deployment: Deployment, region: str) -> dict[str, str]:
        if deployment.api_key:
            return {"authorization": f"Bearer {deployment.api_key}"}
        options = deployment.options
        access, secret = options.get("aws_access_key_id"), options.get(
            "aws_secret_access_key")
        if not access or not secret:
            raise ProviderError("auth", "Bedrock needs api_key, or aws_access_key_id and "
                                "aws_secret_access_key", provider="bedrock")
        return sigv4.sign("POST", url, headers, body, access_key=access,
                          secret_key=secret, session_token=options.get("aws_session_token"),
                          region=region, service="bedrock", now=self._clock(),
                          content_sha256_header=False)

    def chat_response(self, status: int, headers: Mapping[str, str], body: bytes,
                      deployment: Deployment) -> ChatResponse:
        if not 200 <= status < 300:
            raise self.error(status, headers, body)
        try:
            data = json.loads(body)
            blocks = data["output"]["message"]["content"]
            stop_reason = data["stopReason"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError("bad_response", f"not a Converse response: {exc}",
                                status=status, provider="bedrock") from exc
        texts = [block["text"] for block in blocks if "text" in block]
        calls = [{"id": block["toolUse"]["toolUseId"], "type": "function",
                  "function": {"name": block["toolUse"]["name"],
                               "arguments": json.dumps(block["toolUse"].get("input", {}))}}
                 for block in blocks if "toolUse" in block]
        message: Json = {"role": "assistant", "content": "".join(texts) if texts else None,
                         "refusal": None}
        if calls:
            message["tool_calls"] = calls
        request_id = {k.lower(): v for k, v in headers.items()}.get("x-amzn-requestid")
        return chat_response(id=f"chatcmpl-{request_id or uuid.uuid4().hex}",
                             model=deployment.model, message=message,
                             finish_reason=finish_reason(stop_reason),
                             usage=usage_of(data.get("usage") or {}))

    def chat_stream(self, deployment: Deployment) -> StreamDecoder:
        from campusgate.ai.providers.bedrock_stream import ConverseStreamDecoder

        return ConverseStreamDecoder(deployment.model, created=int(time.time()))

    def error(self, status: int, headers: Mapping[str, str], body: bytes
              ) -> ProviderError:
        lowered = {k.lower(): v for k, v in headers.items()}
        data: Any
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        error_type = (lowered.get("x-amzn-errortype") or str(data.get("__type") or "")
                      ).split(":")[0].rpartition("#")[2]
        message = str(data.get("message") or data.get("Message")
                      or body.decode("utf-8", "replace").strip() or f"HTTP {status}")
        return ProviderError(error_kind(error_type, status, message), message,
                             status=status, provider="bedrock",
                             retry_after=retry_after_seconds(dict(lowered)),
                             code=error_type or None)

    def embeddings_request(self, request: Json, deployment: Deployment
                           ) -> UpstreamRequest:
        raise ProviderError("bad_request", "embeddings through Bedrock are not supported "
                            "(InvokeModel takes a body per model family)",
                            provider="bedrock")

    def embeddings_response(self, status: int, headers: Mapping[str, str], body: bytes,
                            deployment: Deployment) -> Json:
        raise self.error(status, headers, body)


BEDROCK = BedrockTranslator()
