"""The price table (ai/pricing.py, ai/prices.json): model names normalised only where
the price is the same, costs from canonical usage, overrides, and no guesses."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from campusgate.ai.pricing import PriceOverrides, PriceTable, cost, default_table, normalise
from campusgate.ai.types import usage


@pytest.mark.parametrize(("given", "expected"), [
    ("gpt-4o-2024-08-06", "gpt-4o"), ("GPT-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("o3-2025-04-16", "o3"), ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
    ("claude-sonnet-4-20250514", "claude-sonnet-4"),
    ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
    ("anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-haiku"),
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5"),
    ("global.anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic.claude-haiku-4-5"),
    ("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-opus-4-1-20250805-v1:0",
     "anthropic.claude-opus-4-1"),
    ("arn:aws:bedrock:eu-west-1:123456789012:inference-profile/"
     "eu.anthropic.claude-3-7-sonnet-20250219-v1:0", "anthropic.claude-3-7-sonnet"),
    ("models/gemini-2.0-flash-001", "gemini-2.0-flash"),
    ("mistral-large-2411", "mistral-large-2411"), ("command-r-08-2024", "command-r-08-2024"),
])
def test_normalise(given: str, expected: str) -> None:
    assert normalise(given) == expected


CASES: list[tuple[str, str, dict[str, Any], str]] = [
    # 1M prompt tokens of which 400K cached, 100K output: 0.6*2.50 + 0.4*1.25 + 0.1*10
    ("openai", "gpt-4o-2024-08-06", usage(1_000_000, 100_000, 400_000), "3.0"),
    # the first gpt-4o snapshot kept its own, higher price
    ("openai", "gpt-4o-2024-05-13", usage(1_000_000, 0), "5"),
    ("azure", "gpt-4.1-mini", usage(2_000_000, 1_000_000, 1_000_000), "2.1"),
    ("openai", "o4-mini", usage(1000, 1000), "0.0055"),
    # Anthropic: 50K read, 50K written (the proposed cache_write_tokens), 50K fresh
    ("anthropic", "claude-sonnet-4-5-20250929",
     {**usage(150_000, 100_000, 50_000),
      "prompt_tokens_details": {"cached_tokens": 50_000, "cache_write_tokens": 50_000}},
     "1.8525"),
    # over 200K prompt tokens the whole request is billed at the long-context rates
    ("anthropic", "claude-sonnet-4-20250514", usage(250_000, 10_000), "1.725"),
    ("bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0", usage(1_000_000, 1_000_000),
     "4.8"),
    ("gemini", "gemini-2.5-pro", usage(100_000, 10_000, 50_000), "0.16875"),
    ("gemini", "gemini-2.5-flash", usage(1_000_000, 1_000_000), "2.8"),
    ("mistral", "mistral-small-2503", usage(1_000_000, 1_000_000), "0.4"),
    ("cohere", "command-r-08-2024", usage(1_000_000, 1_000_000), "0.75"),
]


@pytest.mark.parametrize(("provider", "model", "used", "expected"), CASES)
def test_costs(provider: str, model: str, used: dict[str, Any], expected: str) -> None:
    assert cost(provider, model, used) == Decimal(expected)


@pytest.mark.parametrize(("provider", "model"), [
    ("openai", "gpt-7"), ("mistral", "mistral-large-latest"), ("ollama", "llama3.2"),
    ("gemini", "gemini-2.5-flash-preview-05-20"), ("openai", "claude-sonnet-4"),
])
def test_unknown_models_cost_nothing_known(provider: str, model: str) -> None:
    assert cost(provider, model, usage(10, 10)) is None


@pytest.mark.parametrize("parsed", [False, True])
def test_overrides_win_and_may_price_what_the_table_does_not(parsed: bool) -> None:
    """As config gives them, or parsed once per revision as the gateway passes them."""
    raw = {"OpenAI/GPT-4o": {"input": 1, "output": 2},
           "llama3.2": {"input": "0.01", "output": "0.02"}}
    overrides = PriceOverrides.parse(raw) if parsed else raw
    assert cost("openai", "gpt-4o-2024-11-20", usage(1_000_000, 1_000_000),
                overrides) == Decimal(3)
    assert cost("ollama", "llama3.2", usage(1_000_000, 0), overrides) == Decimal("0.01")
    assert cost("openai", "gpt-4o", None, overrides) is None


def test_the_shipped_table_is_well_formed() -> None:
    table = default_table()
    assert {"openai", "anthropic", "bedrock", "gemini", "mistral", "cohere"} <= set(
        table.prices)
    for models in table.prices.values():
        for name, price in models.items():
            assert name == name.lower() and price.input >= 0 and price.output >= 0
            if price.cached_input is not None:
                assert price.cached_input <= price.input, name
    custom = PriceTable.parse({"providers": {"x": {"models": {
        "m": {"input": 1, "output": 1}}}}})
    assert cost("x", "m-2025-01-01", usage(1_000_000, 0), table=custom) == Decimal(1)


@pytest.mark.parametrize(("rates", "used", "text"), [
    ({"input": "1.50", "output": "2.000"}, usage(1_000_000, 1_000_000), "3.500"),
    ({"input": "0.15", "output": "0.60", "cached_input": "0.075"}, usage(0, 0), "0.000"),
    ({"input": "0.15", "output": "0.60", "cached_input": "0.075"}, usage(12, 9),
     "0.0000072"),
    ({"input": "3", "output": "15", "cache_write": "3.75"},
     {**usage(2000, 100, 500),
      "prompt_tokens_details": {"cached_tokens": 500, "cache_write_tokens": 1000}},
     "0.00825"),
    ({"input": "2.5", "output": "10",
      "long_context": {"threshold": 1000, "input": "5.00", "output": "15"}},
     usage(1500, 10), "0.00765"),
])
def test_the_recorded_cost_text_keeps_the_rates_precision(
        rates: dict[str, Any], used: dict[str, Any], text: str) -> None:
    """The cost as recorded is the text of the exact sum of the four products (as
    many decimals as the most precise rate has), divided by a million."""
    assert str(cost("openai", "any", used, {"openai/any": rates})) == text
