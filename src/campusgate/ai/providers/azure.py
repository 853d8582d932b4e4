"""Azure OpenAI (type ``azure``): OpenAI's Chat Completions on a deployment of an
Azure resource.

Azure OpenAI REST API reference (data plane, inference), "Chat completions - Create"
and "Embeddings - Create": ``POST {base}/openai/deployments/{deployment}/chat/
completions?api-version={version}`` with the key in an ``api-key`` header (option
``auth: bearer`` sends ``Authorization: Bearer`` instead, for Entra ID tokens).
``base_url`` is the resource (``https://{resource}.openai.azure.com``: there is no
default) and ``model`` the deployment's name.  Option ``api_version`` (default
:data:`DEFAULT_API_VERSION`, the latest GA one that takes ``stream_options``); the
version ``v1`` uses the newer ``{base}/openai/v1/chat/completions`` with the model in
the body and no ``api-version``.

Azure's additions, per its "Content filtering" page: a prompt that the filter blocks
is a 400 with ``error.code`` ``content_filter`` and ``innererror`` ``{code:
ResponsibleAIPolicyViolation, content_filter_result: {category: {filtered,
severity}}}`` -> ``content_filter``, the filtered categories named in the message; a
completion the filter cut ends with ``finish_reason: content_filter``; streams begin
with a ``choices: []`` chunk of ``prompt_filter_results`` and may carry annotation-only
chunks (dropped by the stream decoder).  429s carry ``retry-after-ms``/``retry-after``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import quote

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers.base import Deployment
from campusgate.ai.providers.openai import OpenAITranslator
from campusgate.ai.providers.openai_family import parse_error

__all__ = ["AZURE", "DEFAULT_API_VERSION", "AzureTranslator"]

DEFAULT_API_VERSION: Final = "2024-10-21"


class AzureTranslator(OpenAITranslator):
    name = "azure"
    default_base_url = ""

    def url(self, deployment: Deployment, path: str) -> str:
        base = deployment.base_url or self.default_base_url
        if not base:
            raise ProviderError("bad_request", "an azure deployment needs its base_url "
                                "(https://{resource}.openai.azure.com)", provider=self.name)
        version = str(deployment.options.get("api_version") or DEFAULT_API_VERSION)
        if version == "v1":
            return f"{base}/openai/v1/{path}"
        return (f"{base}/openai/deployments/{quote(deployment.model, safe='')}/{path}"
                f"?api-version={quote(version, safe='')}")

    def headers(self, deployment: Deployment) -> dict[str, str]:
        headers = super().headers(deployment)
        if deployment.api_key and deployment.options.get("auth") != "bearer":
            del headers["authorization"]
            headers["api-key"] = deployment.api_key
        return headers

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        found = super().error(status, headers, body)
        _, error = parse_error(body)
        inner = error.get("innererror")
        inner = inner if isinstance(inner, dict) else {}
        if inner.get("code") == "ResponsibleAIPolicyViolation" or found.code == "content_filter":
            found.kind = "content_filter"
            results = inner.get("content_filter_result") or {}
            categories = sorted(name for name, result in results.items()
                                if isinstance(result, dict) and result.get("filtered"))
            if categories:
                found.message += f" (filtered: {', '.join(categories)})"
        return found


AZURE = AzureTranslator()
