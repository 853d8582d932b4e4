"""The AI gateway's settings (the ``ai:`` section): providers, the model names clients
use, and the plugins on the AI endpoints.

A *provider* is one account at one model provider: its ``type`` (a key of
:data:`campusgate.ai.providers.TRANSLATORS`), its base URL, its API key and the
translator's options.  A *model* is a name clients send (``gpt-fast``) and the
provider models that serve it (``targets``), tried in the ``strategy``'s order, then
the ``fallbacks`` (other model names).  ``consumers`` / ``groups`` restrict who may use
a model; a consumer who may not use it is told it does not exist.

Secrets arrive in plaintext (``${ENV}`` allowed) and are sealed before they are stored
(``config/sealing.py``): ``api_key`` becomes ``api_key_encrypted`` (``enc1$``, the
installation keyring: campusgate sends the key to the provider on every call, so it is
encrypted, not hashed); the secret options :data:`SECRET_OPTIONS` (Bedrock's AWS
secret key and session token) are sealed in place -- their value becomes the
``enc1$`` form and the AI runtime decrypts it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from campusgate.config.ai_prompts import AiPrompt, PromptsPath, check_prompts
from campusgate.config.ai_redaction import AiRedaction
from campusgate.config.common import Name, PluginSpec, Seconds, StrictModel
from campusgate.keyring import ENCRYPTED_PREFIX

__all__ = ["SECRET_OPTIONS", "AiBudget", "AiCache", "AiConfig", "AiModel", "AiProvider", "AiTarget",
           "ProviderTimeouts"]

#: Translator options that are secrets: sealed in place like ``api_key``.
SECRET_OPTIONS = ("aws_secret_access_key", "aws_session_token")


class ProviderTimeouts(StrictModel):
    #: Seconds to get a connection to the provider.
    connect: Seconds = 10.0
    #: Seconds between two reads of its answer (the head, then each piece of a stream).
    read: Seconds = 120.0


class AiProvider(StrictModel):
    """One account at one model provider."""

    name: Name
    type: str
    #: The translator's default when absent.
    base_url: str | None = None
    #: Plaintext (from YAML or the admin API); sealed into ``api_key_encrypted``.
    api_key: str | None = Field(default=None, min_length=1, max_length=8192)
    api_key_encrypted: str | None = Field(default=None, pattern=r"^enc1\$")
    options: dict[str, Any] = Field(default_factory=dict)
    timeouts: ProviderTimeouts = Field(default_factory=ProviderTimeouts)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        from campusgate.ai.providers import TRANSLATORS

        if value not in TRANSLATORS:
            raise ValueError(f"unknown provider type {value!r}: one of "
                             f"{', '.join(sorted(TRANSLATORS))}")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url {value!r} must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_key(self) -> AiProvider:
        if self.api_key is not None and self.api_key_encrypted is not None:
            raise ValueError(f"provider {self.name!r}: give api_key or "
                             "api_key_encrypted, not both")
        from campusgate.ai.providers import translator

        if self.base_url is None and not translator(self.type).default_base_url:
            raise ValueError(f"provider {self.name!r}: type {self.type} has no default "
                             "URL: set base_url (your resource's endpoint)")
        return self

    def sealed(self) -> bool:
        """No plaintext secret left (api_key, secret options)."""
        return self.api_key is None and all(
            not isinstance(self.options.get(name), str)
            or self.options[name].startswith(ENCRYPTED_PREFIX) for name in SECRET_OPTIONS)


class AiTarget(StrictModel):
    """A provider's model serving a model name."""

    provider: Name
    model: str = Field(min_length=1, max_length=256)
    weight: int = Field(default=1, ge=0, le=1000)


class AiModel(StrictModel):
    """A model name clients send, and what serves it."""

    name: str = Field(min_length=1, max_length=256, pattern=r"^[^\s]+$")
    targets: list[AiTarget] = Field(min_length=1)
    strategy: Literal["weighted", "least-busy", "lowest-latency"] = "weighted"
    fallbacks: list[str] = Field(default_factory=list)
    #: Consumers allowed by name; with ``groups`` both empty, every caller may use it.
    consumers: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)

    def allows(self, consumer: str | None, groups: tuple[str, ...]) -> bool:
        if not self.consumers and not self.groups:
            return True
        return (consumer is not None and consumer in self.consumers) or any(
            g in self.groups for g in groups)


class AiBudget(StrictModel):
    """A limit on tokens, USD and/or requests per UTC minute, day or month, for the
    calls it applies to: those of ``consumer``, of a member of ``group``, to the model
    name ``model`` -- every one given must match; none given, every call.  A group's
    or model's budget is shared by every caller it applies to."""

    name: Name
    consumer: str | None = Field(default=None, min_length=1, max_length=256)
    group: str | None = Field(default=None, min_length=1, max_length=256)
    model: str | None = Field(default=None, min_length=1, max_length=256)
    period: Literal["minute", "day", "month"]
    tokens: int | None = Field(default=None, ge=1)
    usd: Decimal | None = Field(default=None, gt=0)
    requests: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _a_limit(self) -> AiBudget:
        if self.tokens is None and self.usd is None and self.requests is None:
            raise ValueError(f"budget {self.name!r}: give tokens, usd and/or requests")
        return self


class AiCache(StrictModel):
    """The exact-match response cache of whole chat answers (``ai/cache.py``)."""

    enabled: bool = False
    #: Seconds an answer is kept.
    ttl: Seconds = 300.0
    #: ``consumer``: answers are kept per consumer (safe for student data);
    #: ``global``: shared by every caller.
    scope: Literal["consumer", "global"] = "consumer"
    #: Answers larger than this (their canonical JSON, in bytes) are not kept.
    max_bytes: int = Field(default=1024 * 1024, ge=1, le=64 * 1024 * 1024)


class AiConfig(StrictModel):
    """The ``ai:`` section."""

    #: The API's prefix: ``{path}/chat/completions``, ``{path}/messages``...
    path: str = "/v1"
    providers: list[AiProvider] = Field(default_factory=list)
    models: list[AiModel] = Field(default_factory=list)
    #: Further attempts over the plan after a retryable error.
    retries: int = Field(default=2, ge=0, le=10)
    #: Let clients name ``provider/model`` of any provider directly (every consumer).
    direct_models: bool = False
    #: Price overrides: ``{"provider/model": {input, output, ...}}`` USD per 1M tokens.
    prices: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Largest request body accepted, in bytes.
    max_request_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    plugins: list[PluginSpec] = Field(default_factory=list)
    #: Limits checked before each call and charged after it (``ai/budgets.py``).
    budgets: list[AiBudget] = Field(default_factory=list)
    #: The state backend unreachable: let calls through (open) or refuse them (503).
    budgets_fail: Literal["open", "closed"] = "open"
    #: The response cache (off by default).
    cache: AiCache = Field(default_factory=AiCache)
    #: Personal data redacted before a call leaves (``config/ai_redaction.py``).
    redaction: AiRedaction = Field(default_factory=AiRedaction)
    #: Prompts published as APIs under ``prompts_path`` (``config/ai_prompts.py``).
    prompts_path: PromptsPath = "/prompts"
    prompts: list[AiPrompt] = Field(default_factory=list)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or any(c in value for c in "{}~?# "):
            raise ValueError(f"ai.path {value!r} must be a plain path starting with '/'")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _references(self) -> AiConfig:
        providers = [p.name for p in self.providers]
        models = [m.name for m in self.models]
        budgets = [b.name for b in self.budgets]
        for kind, names in (("ai.providers", providers), ("ai.models", models),
                            ("ai.budgets", budgets)):
            if len(set(names)) != len(names):
                dup = next(n for n in names if names.count(n) > 1)
                raise ValueError(f"duplicate name in {kind}: {dup!r}")
        for model in self.models:
            for target in model.targets:
                if target.provider not in providers:
                    raise ValueError(f"model {model.name!r}: unknown provider "
                                     f"{target.provider!r}")
            for fallback in model.fallbacks:
                if fallback not in models or fallback == model.name:
                    raise ValueError(f"model {model.name!r}: fallback {fallback!r} is not "
                                     "another model in ai.models")
        check_prompts(self.prompts, models, self.path, self.prompts_path)
        from campusgate.ai.pricing import ModelPrice

        for key, price in self.prices.items():
            try:
                ModelPrice.parse(price)
            except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
                raise ValueError(f"ai.prices[{key!r}]: {exc}") from None
        return self

    def provider(self, name: str) -> AiProvider | None:
        return next((p for p in self.providers if p.name == name), None)

    def model(self, name: str) -> AiModel | None:
        return next((m for m in self.models if m.name == name), None)
