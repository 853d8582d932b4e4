"""What a call cost, from its canonical usage and a price table shipped as data.

``prices.json`` (next to this module) holds, per provider and model, USD per million
tokens: ``input`` (uncached), ``cached_input`` (read from the prompt cache),
``cache_write`` (written to it: Anthropic's and Bedrock's 5-minute writes), ``output``,
and optionally ``long_context`` rates for the whole request when the prompt is over a
threshold (Claude Sonnet 4/4.5 over 200K, Gemini 2.5 Pro over 200K).  Each provider
records its pricing page and when the rates were taken.  Config overrides (a mapping
the shell passes) win over the table.

:func:`cost` never guesses: a model it does not know costs ``None``, so the access
record says "unknown" rather than a wrong figure.  Model names are normalised
(:func:`normalise`) only in ways that keep the price: dated snapshots
(``gpt-4o-2024-08-06``, ``claude-sonnet-4-20250514``, ``gemini-2.0-flash-001``) and
Bedrock ids (``us.anthropic.claude-sonnet-4-20250514-v1:0``, model and
inference-profile ARNs) fall back to their family, while an exact key in the table --
``gpt-4o-2024-05-13``, which was priced apart -- is looked up first.  Moving aliases
such as ``mistral-large-latest`` are left unknown.

Usage is the canonical shape (:func:`campusgate.ai.types.usage`): ``prompt_tokens``
counts all input tokens; ``prompt_tokens_details.cached_tokens`` those read from a
cache; ``prompt_tokens_details.cache_write_tokens`` -- not an OpenAI field; translators
of providers that bill cache writes apart may add it -- those written to one.  A model
without a ``cached_input`` or ``cache_write`` rate bills those tokens at ``input``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property, lru_cache
from importlib.resources import files
from typing import Any

__all__ = ["ModelPrice", "PriceOverrides", "PriceTable", "cost", "default_table", "normalise",
           "price_of"]

_MILLION = Decimal(1_000_000)
#: Bedrock's cross-region inference-profile prefixes.
_GEOGRAPHIES = frozenset({"us", "eu", "apac", "global", "us-gov", "jp", "au", "ca"})
_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")
_REVISION_SUFFIX = re.compile(r"-\d{3}$")
_BEDROCK_VERSION = re.compile(r"-v\d+(?::\d+)?$")


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    #: (threshold in prompt tokens, the prices above it).
    long_context: tuple[int, ModelPrice] | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> ModelPrice:
        """From a table or override entry (numbers or numeric strings)."""

        def rate(name: str) -> Decimal | None:
            value = raw.get(name)
            return None if value is None else Decimal(str(value))

        long = raw.get("long_context")
        return cls(input=Decimal(str(raw["input"])), output=Decimal(str(raw["output"])),
                   cached_input=rate("cached_input"), cache_write=rate("cache_write"),
                   long_context=None if long is None
                   else (int(long["threshold"]), cls.parse(long)))

    @cached_property
    def _scaled(self) -> tuple[int, int, int, int, int] | None:
        """(E, input, cached input, cache write, output): the four rates used as whole
        multiples of 10**E, E the smallest of their exponents; None unless all are
        finite and not negative (then :meth:`of` takes the general way)."""
        rates = (self.input, self.cached_input if self.cached_input is not None
                 else self.input, self.cache_write if self.cache_write is not None
                 else self.input, self.output)
        exponents = []
        for rate in rates:
            exponent = rate.as_tuple().exponent
            if not isinstance(exponent, int) or rate < 0:
                return None
            exponents.append(exponent)
        low = min(exponents)
        return (low, *(int(rate.scaleb(-low)) for rate in rates))  # type: ignore[return-value]

    def of(self, usage: Mapping[str, Any]) -> Decimal:
        """The cost of one call's usage.

        Summed in whole numbers of 10**E (:attr:`_scaled`) and made a Decimal once:
        the same value and exponent as the Decimal sum of the four products (an
        exact sum of products of integers by rates has the smallest exponent of the
        rates), for a few integer operations instead of eight Decimal ones."""
        prompt = int(usage.get("prompt_tokens") or 0)
        details = usage.get("prompt_tokens_details") or {}
        cached = int(details.get("cached_tokens") or 0)
        written = int(details.get("cache_write_tokens") or 0)
        prices = self
        if self.long_context is not None and prompt > self.long_context[0]:
            prices = self.long_context[1]
        fresh = max(prompt - cached - written, 0)
        completion = int(usage.get("completion_tokens") or 0)
        scaled = prices._scaled
        if scaled is not None:
            low, rate_in, rate_cached, rate_write, rate_out = scaled
            return Decimal(fresh * rate_in + cached * rate_cached + written * rate_write
                           + completion * rate_out).scaleb(low) / _MILLION
        total = (fresh * prices.input
                 + cached * (prices.cached_input if prices.cached_input is not None
                             else prices.input)
                 + written * (prices.cache_write if prices.cache_write is not None
                              else prices.input)
                 + completion * prices.output)
        return total / _MILLION


@dataclass(frozen=True)
class PriceTable:
    #: provider -> normalised model -> price.
    prices: Mapping[str, Mapping[str, ModelPrice]]
    #: provider -> the provider whose prices it uses (``azure`` -> ``openai``).
    aliases: Mapping[str, str]

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> PriceTable:
        return cls(prices={provider: {model: ModelPrice.parse(entry)
                                      for model, entry in section["models"].items()}
                           for provider, section in raw["providers"].items()},
                   aliases=dict(raw.get("provider_aliases") or {}))

    def find(self, provider: str, model: str) -> ModelPrice | None:
        """The price of ``model`` at ``provider``: the exact name, then the
        normalised one; None when neither is known."""
        models = self.prices.get(self.aliases.get(provider, provider)) or {}
        raw = model.strip().lower()
        return models.get(raw) or models.get(normalise(raw))


@lru_cache(maxsize=1)
def default_table() -> PriceTable:
    """The shipped ``prices.json`` (read once)."""
    text = files("campusgate.ai").joinpath("prices.json").read_text(encoding="utf-8")
    return PriceTable.parse(json.loads(text))


def normalise(model: str) -> str:
    """The table key of a model name: lower case; Bedrock ARNs, geography prefixes and
    ``-v1:0`` versions, Gemini's ``models/`` and ``-001`` revisions, and dated
    snapshot suffixes removed."""
    name = model.strip().lower()
    if name.startswith("arn:"):
        name = name.rpartition("/")[2]
    name = name.removeprefix("models/")
    head, dot, rest = name.partition(".")
    if dot and head in _GEOGRAPHIES and "." in rest:
        name = rest
    name = _BEDROCK_VERSION.sub("", name)
    name = _DATE_SUFFIX.sub("", name)
    return _REVISION_SUFFIX.sub("", name)


@dataclass(frozen=True)
class PriceOverrides:
    """The config's price overrides, parsed once (per revision, not per call): keyed
    ``"provider/model"`` or ``"model"``, lower case."""

    prices: Mapping[str, ModelPrice]

    @classmethod
    def parse(cls, raw: Mapping[str, Mapping[str, Any]] | None) -> PriceOverrides:
        return cls({key.strip().lower(): ModelPrice.parse(value)
                    for key, value in (raw or {}).items()})

    def find(self, provider: str, model: str) -> ModelPrice | None:
        prices = self.prices
        if not prices:
            return None
        exact = model.strip().lower()
        for name in (exact, normalise(exact)):
            for key in (f"{provider.lower()}/{name}", name):
                found = prices.get(key)
                if found is not None:
                    return found
        return None


def cost(provider: str, model: str, usage: Mapping[str, Any] | None,
         overrides: PriceOverrides | Mapping[str, Mapping[str, Any]] | None = None, *,
         table: PriceTable | None = None) -> Decimal | None:
    """USD for one call, or None when the model's price is unknown (never a guess).

    ``overrides`` come from config, keyed ``"provider/model"`` or ``"model"`` (exact
    or normalised names), each ``{input, output, cached_input?, cache_write?,
    long_context?}`` per million tokens; the gateway passes them parsed
    (:class:`PriceOverrides`, made once per revision)."""
    if usage is None:
        return None
    price = price_of(provider, model, overrides, table=table)
    return None if price is None else price.of(usage)


def price_of(provider: str, model: str,
             overrides: PriceOverrides | Mapping[str, Mapping[str, Any]] | None = None, *,
             table: PriceTable | None = None) -> ModelPrice | None:
    """The price :func:`cost` uses for ``model`` at ``provider`` (None: unknown); the
    same for every call of a revision, so the gateway looks it up once per target."""
    price = None
    if overrides:
        if not isinstance(overrides, PriceOverrides):
            overrides = PriceOverrides.parse(overrides)
        price = overrides.find(provider, model)
    if price is None:
        price = (table or default_table()).find(provider, model)
    return price
