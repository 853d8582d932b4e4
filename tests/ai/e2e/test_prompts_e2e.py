"""Prompts as APIs over real sockets: httpx -> campusgate's proxy (key-auth on the AI
service) -> the ``builtin://ai`` backend -> a fake OpenAI provider on 127.0.0.1
(``ai_shell_kit.start_ai_gateway``, ``fake_provider.running_fake``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from ai_harness import ALICE_KEY, BOB_KEY, PROVIDER_KEY, key_headers
from ai_shell_kit import AiGateway, start_ai_gateway
from fake_provider import FakeProvider, RunningFake, running_fake
from fake_reply import Reply

SUMMARY_V1 = {"version": 1, "model": "gpt-fast",
              "messages": [{"role": "user", "content": "Summarise: {{text}}"}],
              "variables": {"text": {}}}
SUMMARY_V2 = {"version": 2, "model": "gpt-fast",
              "messages": [{"role": "system",
                            "content": "You summarise for grade {{grade}} in {{ words }} words."},
                           {"role": "user", "content": "{{text}}"}],
              "parameters": {"temperature": 0.2, "max_tokens": 400},
              "variables": {"text": {"required": True, "description": "the lesson text"},
                            "grade": {"default": "5"},
                            "words": {"type": "integer", "default": 50}}}


def entities(fake: str) -> dict[str, Any]:
    return {
        "consumer_groups": [{"name": "staff"}],
        "consumers": [
            {"name": "alice", "groups": ["staff"],
             "credentials": [{"type": "key-auth", "key": ALICE_KEY}]},
            {"name": "bob", "credentials": [{"type": "key-auth", "key": BOB_KEY}]}],
        "ai": {
            "providers": [{"name": "main", "type": "openai", "base_url": f"{fake}/v1",
                           "api_key": PROVIDER_KEY}],
            "models": [{"name": "gpt-fast", "targets": [{"provider": "main",
                                                         "model": "gpt-4o-mini"}]},
                       {"name": "staff-only", "groups": ["staff"],
                        "targets": [{"provider": "main", "model": "staff-model"}]}],
            "prompts": [
                {"name": "lesson-summary", "description": "Summarise a lesson",
                 "versions": [SUMMARY_V1, SUMMARY_V2]},
                {"name": "staff-notes", "versions": [{
                    "version": 1, "model": "staff-only",
                    "messages": [{"role": "user", "content": "Notes on {{topic}}"}],
                    "variables": {"topic": {}}}]}],
            "plugins": [{"name": "key-auth",
                         "config": {"key_names": ["authorization", "x-api-key"]}}]}}


@pytest.fixture(scope="module")
def provider() -> Iterator[RunningFake]:
    with running_fake(FakeProvider(keys={PROVIDER_KEY})) as fake:
        yield fake


@pytest.fixture
async def gateway(provider: RunningFake) -> AsyncIterator[AiGateway]:
    served = await start_ai_gateway(entities(provider.url))
    yield served
    await served.close()


@pytest.fixture
async def alice(gateway: AiGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, headers=key_headers(ALICE_KEY),
                                 timeout=10) as client:
        yield client


def error_of(answer: httpx.Response) -> dict[str, Any]:
    body = answer.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


async def test_a_call_sends_the_rendered_messages(alice: httpx.AsyncClient,
                                                  provider: RunningFake) -> None:
    answer = await alice.post("/prompts/lesson-summary",
                              json={"variables": {"text": "Plants make sugar.", "words": 30}})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-prompt-version"] == "2"
    body = answer.json()
    assert body["object"] == "chat.completion" and body["model"] == "gpt-fast"
    assert body["choices"][0]["message"]["content"] == "Hello from the fake provider."
    assert body["usage"]["total_tokens"] == 19
    seen = provider.seen[-1].body
    assert seen["model"] == "gpt-4o-mini"
    assert seen["messages"] == [
        {"role": "system", "content": "You summarise for grade 5 in 30 words."},
        {"role": "user", "content": "Plants make sugar."}]
    assert (seen["temperature"], seen["max_tokens"]) == (0.2, 400)


async def test_missing_and_bad_variables_are_a_400_naming_them(
        alice: httpx.AsyncClient, provider: RunningFake) -> None:
    calls = len(provider.seen)
    answer = await alice.post("/prompts/lesson-summary",
                              json={"variables": {"grade": 3, "colour": "red"}})
    assert answer.status_code == 400
    error = error_of(answer)
    assert error["type"] == "invalid_request_error" and error["code"] == "missing_variable"
    for says in ("missing variable 'text'", "variable 'grade' must be a string",
                 "unknown variable 'colour'"):
        assert says in error["message"]
    answer = await alice.post("/prompts/lesson-summary", content=b"{not json")
    assert answer.status_code == 400 and "not valid JSON" in error_of(answer)["message"]
    assert len(provider.seen) == calls  # no provider was called


async def test_a_version_is_pinned_by_path_or_body(alice: httpx.AsyncClient,
                                                   provider: RunningFake) -> None:
    for path, body in (("/prompts/lesson-summary/versions/1", {}), (
            "/prompts/lesson-summary", {"version": 1})):
        answer = await alice.post(path, json={"variables": {"text": "Rain."}, **body})
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-prompt-version"] == "1"
        assert provider.seen[-1].body["messages"] == [
            {"role": "user", "content": "Summarise: Rain."}]
        assert "temperature" not in provider.seen[-1].body
    answer = await alice.post("/prompts/lesson-summary/versions/1",
                              json={"variables": {"text": "x"}, "version": 2})
    assert answer.status_code == 400
    answer = await alice.post("/prompts/lesson-summary/versions/7",
                              json={"variables": {"text": "x"}})
    assert answer.status_code == 404 and error_of(answer)["code"] == "prompt_not_found"


async def test_a_call_streams(alice: httpx.AsyncClient, provider: RunningFake) -> None:
    provider.push(Reply(text="Plants eat light."))
    async with alice.stream("POST", "/prompts/lesson-summary", json={
            "variables": {"text": "Photosynthesis."}, "stream": True,
            "stream_options": {"include_usage": True}}) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        assert answer.headers["x-prompt-version"] == "2"
        events = [line.removeprefix("data: ") async for line in answer.aiter_lines()
                  if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["delta"].get("content") or "" for chunk in chunks
                   for c in chunk["choices"])
    assert text == "Plants eat light."
    assert chunks[-1]["usage"]["total_tokens"] == 19
    assert provider.seen[-1].body["stream"] is True


async def test_prompts_follow_their_models_access(gateway: AiGateway,
                                                  alice: httpx.AsyncClient) -> None:
    listed = (await alice.get("/prompts")).json()
    assert [p["name"] for p in listed["data"]] == ["lesson-summary", "staff-notes"]
    described = (await alice.get("/prompts/lesson-summary")).json()
    assert described["version"] == 2
    assert [v["version"] for v in described["versions"]] == [1, 2]
    assert described["versions"][1]["variables"]["text"] == {
        "type": "string", "description": "the lesson text", "required": True}
    assert "messages" not in json.dumps(described)
    async with httpx.AsyncClient(base_url=gateway.url, headers=key_headers(BOB_KEY)) as bob:
        listed = (await bob.get("/prompts")).json()
        assert [p["name"] for p in listed["data"]] == ["lesson-summary"]
        for answer in (await bob.get("/prompts/staff-notes"),
                       await bob.post("/prompts/staff-notes", json={"variables": {
                           "topic": "x"}})):
            assert answer.status_code == 404
            assert error_of(answer)["code"] == "prompt_not_found"
        doc = (await bob.get("/prompts/openapi.json")).json()
        assert not any("staff-notes" in path for path in doc["paths"])
    async with httpx.AsyncClient(base_url=gateway.url) as anonymous:
        assert (await anonymous.get("/prompts")).status_code == 401


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("POST", "/prompts/no-such", 404, "prompt_not_found"),
    ("PUT", "/prompts/lesson-summary", 405, "method_not_allowed"),
    ("POST", "/prompts", 405, "method_not_allowed"),
    ("DELETE", "/prompts/openapi.json", 405, "method_not_allowed"),
    ("GET", "/prompts/lesson-summary/versions/1", 405, "method_not_allowed"),
    ("POST", "/prompts/lesson-summary/other/1", 404, "unknown_url"),
])
async def test_wrong_paths_and_methods(alice: httpx.AsyncClient, method: str, path: str,
                                       status: int, code: str) -> None:
    answer = await alice.request(method, path, json={})
    assert answer.status_code == status
    assert error_of(answer)["code"] == code


async def test_the_openapi_document(alice: httpx.AsyncClient) -> None:
    answer = await alice.get("/prompts/openapi.json")
    assert answer.status_code == 200
    doc = answer.json()
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == {
        "/prompts/lesson-summary", "/prompts/lesson-summary/versions/1",
        "/prompts/lesson-summary/versions/2", "/prompts/staff-notes",
        "/prompts/staff-notes/versions/1"}
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert doc["components"]["securitySchemes"]["header-x-api-key"]["in"] == "header"
    operation = doc["paths"]["/prompts/lesson-summary"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator.check_schema(schema)
    variables = schema["properties"]["variables"]
    assert variables["required"] == ["text"]
    assert variables["properties"]["words"] == {"type": "integer", "default": 50}
    body = {"variables": {"text": "Volcanoes."}}
    jsonschema.validate(body, schema)
    answer = await alice.post("/prompts/lesson-summary", json=body)
    assert answer.status_code == 200
    registry = {"components": doc["components"]}
    completion = {**operation["responses"]["200"]["content"]["application/json"]["schema"],
                  **registry}
    jsonschema.validate(answer.json(), completion)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"variables": {}}, schema)
