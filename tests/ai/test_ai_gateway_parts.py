"""The AI request path's pure parts: endpoints, body parsing, model access and plans,
the OpenAI stream encoder, error shapes, and the runtime's carried-over health."""

from __future__ import annotations

import json
from typing import Any

import pytest

from campusgate.ai.errors import ProviderError
from campusgate.ai.gateway.access import model_plan, visible_models
from campusgate.ai.gateway.backend import endpoint_of
from campusgate.ai.gateway.body import parse_json_object
from campusgate.ai.gateway.replies import error_payload
from campusgate.ai.gateway.runtime import AiRuntime, AiState
from campusgate.ai.gateway.streams import OpenAiEncoder
from campusgate.config.ai import AiConfig
from campusgate.keyring import Keyring
from campusgate.proxy.consumers import ConsumerInfo

RING = Keyring(b"k" * 32)


def config(**extra: Any) -> AiConfig:
    return AiConfig.model_validate({
        "providers": [{"name": "oa", "type": "openai", "api_key": "sk-1"},
                      {"name": "an", "type": "anthropic",
                       "api_key_encrypted": RING.encrypt("sk-2")}],
        "models": [
            {"name": "fast", "targets": [{"provider": "oa", "model": "gpt-4o-mini"}],
             "fallbacks": ["claude"]},
            {"name": "claude", "targets": [{"provider": "an", "model": "haiku"}]},
            {"name": "staff", "targets": [{"provider": "oa", "model": "gpt-4o-mini"}],
             "groups": ["teachers"]},
            {"name": "alice-only", "targets": [{"provider": "oa", "model": "o3"}],
             "consumers": ["alice"]},
        ], **extra})


def state(**extra: Any) -> AiState:
    built = AiRuntime(RING).build(config(**extra))
    assert built is not None
    return built


def who(name: str, *groups: str) -> ConsumerInfo:
    return ConsumerInfo(name, name, None, groups, ())


@pytest.mark.parametrize(("path", "expected"), [
    ("/v1/chat/completions", ("/chat/completions", None)),
    ("/llm/v1/messages/", ("/messages", None)),
    ("/v1/models", ("/models", None)),
    ("/v1/models/gpt-fast", ("/models", "gpt-fast")),
    ("/v1/chat/completions/x", ("", None)),
    ("/v1/files", ("", None)),
])
def test_endpoints_by_path(path: str, expected: tuple[str, str | None]) -> None:
    assert endpoint_of(path) == expected


@pytest.mark.parametrize(("body", "message"), [
    (b"", "empty"), (b"{nope", "not valid JSON"), (b"[1]", "JSON object"),
    (b"\xff\xfe", "not valid JSON"),
])
def test_bad_bodies_are_400s_that_say_why(body: bytes, message: str) -> None:
    with pytest.raises(ProviderError) as info:
        parse_json_object(body)
    assert info.value.client_status() == 400 and message in info.value.message


def test_keys_are_decrypted_and_base_urls_defaulted() -> None:
    s = state()
    fast = s.router.groups["fast"].targets[0]
    assert fast.deployment.api_key == "sk-1"
    assert fast.deployment.base_url == "https://api.openai.com/v1"
    assert s.router.groups["claude"].targets[0].deployment.api_key == "sk-2"


def test_plans_follow_fallbacks_and_put_cooling_targets_last() -> None:
    s = state()
    plan = model_plan(s, "fast", None, now=0.0)
    assert [t.id for t in plan] == ["oa/gpt-4o-mini", "an/haiku"]
    s.router.report(plan[0], 0.0, error=ProviderError("rate_limited", "slow", 429,
                                                      retry_after=10))
    assert [t.id for t in model_plan(s, "fast", None, now=1.0)] == ["an/haiku",
                                                                    "oa/gpt-4o-mini"]


def test_restricted_models_do_not_exist_for_others() -> None:
    s = state()
    for name, consumer in (("staff", None), ("staff", who("bob")),
                           ("alice-only", who("bob", "teachers"))):
        with pytest.raises(ProviderError) as info:
            model_plan(s, name, consumer, 0.0)
        assert info.value.client_status() == 404
        assert info.value.code == "model_not_found"
    assert model_plan(s, "staff", who("bob", "teachers"), 0.0)
    assert model_plan(s, "alice-only", who("alice"), 0.0)
    assert visible_models(s, who("bob", "teachers")) == ["fast", "claude", "staff"]
    assert visible_models(s, None) == ["fast", "claude"]


def test_a_bare_model_name_plans_over_the_models_the_consumer_may_use() -> None:
    s = state()
    # gpt-4o-mini serves "fast" (open) and "staff" (teachers only)
    assert [t.id for t in model_plan(s, "gpt-4o-mini", None, 0.0)] == [
        "oa/gpt-4o-mini", "an/haiku"]
    with pytest.raises(ProviderError):
        model_plan(s, "o3", who("bob"), 0.0)


def test_provider_model_names_need_direct_models() -> None:
    with pytest.raises(ProviderError):
        model_plan(state(), "oa/gpt-4.1", None, 0.0)
    plan = model_plan(state(direct_models=True), "oa/gpt-4.1", None, 0.0)
    assert plan[0].deployment.model == "gpt-4.1" and plan[0].deployment.api_key == "sk-1"


def test_health_survives_a_reload_only_for_unchanged_targets() -> None:
    runtime = AiRuntime(RING)
    runtime.update(config())
    assert runtime.state is not None
    router = runtime.state.router
    for target in (router.groups["fast"].targets[0], router.groups["claude"].targets[0]):
        router.report(target, 0.0, error=ProviderError("auth", "bad key", 401))
    changed = config().model_dump()
    changed["providers"][1]["api_key_encrypted"] = RING.encrypt("sk-new")
    runtime.update(AiConfig.model_validate(changed))
    assert set(runtime.state.router.disabled()) == {"oa/gpt-4o-mini"}


def chunk(**fields: Any) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
            **fields}


def test_the_openai_encoder_renames_the_model_and_drops_unasked_usage() -> None:
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    text = chunk(choices=[{"index": 0, "delta": {"content": "hi"}}])
    last = chunk(choices=[], usage=usage)
    plain = OpenAiEncoder("fast", include_usage=False)
    out = plain.chunk(dict(text))
    assert out.startswith(b"data: ") and out.endswith(b"\n\n")
    assert json.loads(out[6:])["model"] == "fast"
    assert plain.chunk(dict(last)) == b""
    assert plain.end() == b"data: [DONE]\n\n"
    asked = OpenAiEncoder("fast", include_usage=True)
    assert json.loads(asked.chunk(dict(last))[6:])["usage"] == usage
    failed = json.loads(plain.fail(ProviderError("server", "boom", 500, "oa"))[6:])
    assert failed["error"]["type"] == "server_error" and "boom" in failed["error"]["message"]


def test_errors_take_the_client_apis_shape() -> None:
    error = ProviderError("rate_limited", "slow down", 429, "oa")
    assert error_payload(error, "openai")["error"]["type"] == "rate_limit_error"
    assert error_payload(error, "responses")["error"]["type"] == "rate_limit_error"
    anthropic = error_payload(error, "anthropic")
    assert anthropic["type"] == "error" and anthropic["error"]["type"] == "rate_limit_error"
