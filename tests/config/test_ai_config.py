"""The ``ai:`` section: loading, validation errors, sealing of provider secrets, diffs,
and the implicit ``campusgate-ai`` service."""

from __future__ import annotations

import asyncio

import pytest

from campusgate.config.diff import diff_entities
from campusgate.config.loader import ConfigError, load_config_text, parse_entities_text
from campusgate.config.model import Entities
from campusgate.config.sealing import is_sealed, seal
from campusgate.keyring import Keyring
from campusgate.proxy.snapshot import AI_SERVICE, compile_snapshot

AI = """\
ai:
  providers:
    - name: openai-main
      type: openai
      api_key: "${OPENAI_API_KEY}"
      timeouts: {connect: 5, read: 60}
    - name: claude
      type: anthropic
      api_key: sk-ant-test
    - name: aws
      type: bedrock
      options: {region: us-east-1, aws_access_key_id: AKIDEXAMPLE,
                aws_secret_access_key: wJalrXUtnFEMI}
  models:
    - name: gpt-fast
      targets: [{provider: openai-main, model: gpt-4o-mini}]
      fallbacks: [claude-fast]
    - name: claude-fast
      targets: [{provider: claude, model: claude-3-5-haiku-latest, weight: 2}]
      strategy: least-busy
      groups: [staff]
  prices: {"openai/gpt-4o-mini": {input: 0.1, output: 0.4}}
"""


def load(text: str) -> Entities:
    return parse_entities_text(text, env={"OPENAI_API_KEY": "sk-from-env"})


def test_the_section_loads_with_env_references() -> None:
    ai = load(AI).ai
    assert ai is not None
    assert ai.path == "/v1" and ai.retries == 2
    assert ai.providers[0].api_key == "sk-from-env"
    assert ai.providers[0].timeouts.read == 60
    assert ai.model("claude-fast") is not None
    assert ai.model("claude-fast").targets[0].weight == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(("change", "message"), [
    (("type: openai", "type: openia"), "unknown provider type 'openia'"),
    (("{provider: openai-main, model", "{provider: nobody, model"),
     "unknown provider 'nobody'"),
    (("fallbacks: [claude-fast]", "fallbacks: [gpt-slow]"), "fallback 'gpt-slow'"),
    (("name: claude\n", "name: openai-main\n"), "duplicate name in ai.providers"),
    (("name: claude-fast", "name: gpt-fast"), "duplicate name in ai.models"),
    (("input: 0.1", "inpt: 0.1"), "ai.prices"),
    (("type: anthropic", "type: azure"), "set base_url"),
])
def test_bad_sections_fail_at_load_with_a_clear_error(change: tuple[str, str],
                                                       message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(AI.replace(*change))
    assert message in str(info.value)


def test_provider_secrets_are_sealed_and_reused() -> None:
    ring = Keyring(b"k" * 32)
    entities = load(AI)
    assert not is_sealed(entities)
    sealed = seal(entities, ring)
    assert is_sealed(sealed)
    assert sealed.ai is not None
    main, claude, aws = sealed.ai.providers
    assert main.api_key is None and main.api_key_encrypted is not None
    assert ring.decrypt(main.api_key_encrypted) == "sk-from-env"
    assert ring.decrypt(claude.api_key_encrypted or "") == "sk-ant-test"
    secret = aws.options["aws_secret_access_key"]
    assert secret.startswith("enc1$") and ring.decrypt(secret) == "wJalrXUtnFEMI"
    assert aws.options["aws_access_key_id"] == "AKIDEXAMPLE"  # not a secret
    dumped = sealed.model_dump_json()
    assert "sk-from-env" not in dumped and "wJalrXUtnFEMI" not in dumped
    again = seal(load(AI), ring, previous=sealed)
    assert again == sealed  # same plaintext: same sealed values, no new revision
    assert Entities.model_validate_json(dumped) == sealed


def test_diff_names_ai_settings_providers_and_models() -> None:
    old = load(AI)
    new = load(AI.replace("read: 60", "read: 90").replace("strategy: least-busy",
                                                          "strategy: weighted")
               + "  retries: 1\n")
    changes = {(c.action, c.kind, c.name) for c in diff_entities(old, new)}
    assert changes == {("updated", "ai", "ai"), ("updated", "ai_provider", "openai-main"),
                       ("updated", "ai_model", "claude-fast")}


def test_the_ai_service_is_added_on_the_api_paths() -> None:
    entities = load(AI.replace("ai:\n", "ai:\n  path: /llm\n", 1))
    loop = asyncio.new_event_loop()
    try:
        snap = compile_snapshot(1, entities, [], loop=loop)
    finally:
        loop.close()
    for path in ("/llm/chat/completions", "/llm/messages", "/llm/models"):
        match = snap.router.match("POST", "x", path, [], "")
        assert match is not None and match.payload.name == AI_SERVICE
    assert snap.router.match("POST", "x", "/v1/chat/completions", [], "") is None


def test_the_whole_file_carries_the_section() -> None:
    config = load_config_text(AI, env={"OPENAI_API_KEY": "k"})
    assert config.entities().ai is not None
