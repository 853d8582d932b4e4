"""Prompts as APIs without sockets: the template language, the variables' checks,
the rendered request, the configuration's validation and the OpenAPI document."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from campusgate.ai.errors import ProviderError
from campusgate.ai.prompts import TemplateError, fill, parse_call, render, template_names
from campusgate.ai.prompts_openapi import describe, openapi_document, request_schema
from campusgate.config.ai import AiConfig
from campusgate.config.ai_prompts import AiPromptVersion
from campusgate.config.loader import load_config_text

LESSON: dict[str, Any] = {
    "name": "lesson-summary", "description": "Summarise a lesson for a grade level",
    "versions": [{
        "version": 1, "model": "gpt-fast",
        "messages": [{"role": "system", "content": "You summarise for grade {{grade}}."},
                     {"role": "user", "content": "{{ text }}"}],
        "parameters": {"temperature": 0.2, "max_tokens": 400},
        "variables": {"text": {"required": True, "description": "the lesson text",
                               "max_length": 50},
                      "grade": {"default": "5"}}}]}


def ai_config(*prompts: dict[str, Any], **extra: Any) -> AiConfig:
    return AiConfig.model_validate({
        "providers": [{"name": "p", "type": "openai", "api_key": "sk-x"}],
        "models": [{"name": "gpt-fast", "targets": [{"provider": "p", "model": "m"}]}],
        "prompts": list(prompts), **extra})


def version(**variables: Any) -> AiPromptVersion:
    names = " ".join(f"{{{{{n}}}}}" for n in variables)
    return AiPromptVersion.model_validate({
        "version": 1, "model": "gpt-fast", "variables": variables,
        "messages": [{"role": "user", "content": f"say {names}" if names else "hi"}]})


@pytest.mark.parametrize(("text", "values", "expected"), [
    ("Hello {{name}}!", {"name": "Ada"}, "Hello Ada!"),
    ("{{ a }}{{a}}-{{b_2}}", {"a": "x", "b_2": "y"}, "xx-y"),
    (r"literal \{{name}} and {{name}}", {"name": "n"}, "literal {{name}} and n"),
    ("JSON {\"a\": {\"b\": 1}} stays", {}, "JSON {\"a\": {\"b\": 1}} stays"),
    ("{{v}}", {"v": "{{w}}"}, "{{w}}"),  # values are never read as templates
    ("a } b { c }}", {}, "a } b { c }}"),
])
def test_fill(text: str, values: dict[str, str], expected: str) -> None:
    assert fill(text, values) == expected
    assert template_names(text) == list(dict.fromkeys(values))


@pytest.mark.parametrize(("text", "says"), [
    ("{{ user.name }}", "'{{ user.name }}' at character 0 is not a variable"),
    ("hi {{1x}}", "'{{1x}}' at character 3"),
    ("open {{name", "'{{name' at character 5"),
    ("{{}}", "'{{}}'"),
    ("{{{x}}}", "is not a variable"),
])
def test_malformed_templates(text: str, says: str) -> None:
    with pytest.raises(TemplateError, match="is not a variable") as caught:
        template_names(text)
    assert says in str(caught.value)


@pytest.mark.parametrize(("variables", "given", "values"), [
    ({"t": {}}, {"t": "x"}, {"t": "x"}),
    ({"t": {"default": "d"}}, {}, {"t": "d"}),
    ({"t": {"required": False}}, {}, {"t": ""}),
    ({"n": {"type": "integer"}}, {"n": 7}, {"n": "7"}),
    ({"n": {"type": "integer", "default": 3}}, {"n": 4.0}, {"n": "4"}),
    ({"x": {"type": "number"}}, {"x": 0.25}, {"x": "0.25"}),
    ({"b": {"type": "boolean"}}, {"b": False}, {"b": "false"}),
    ({"b": {"type": "boolean", "default": True}}, None, {"b": "true"}),
])
def test_variables_are_rendered_as_text(variables: dict[str, Any], given: Any,
                                        values: dict[str, str]) -> None:
    request = render(version(**variables), given)
    assert request["messages"][0]["content"] == "say " + " ".join(values.values())


@pytest.mark.parametrize(("variables", "given", "message", "code"), [
    ({"text": {}, "grade": {}}, {}, "missing variable 'text'; missing variable 'grade'",
     "missing_variable"),
    ({"text": {}}, {"text": "x", "txet": "y"},
     "unknown variable 'txet' (this prompt's variables: text)", "invalid_variable"),
    ({"text": {}}, {"txet": "y"},
     "missing variable 'text'; unknown variable 'txet'", "missing_variable"),
    ({"n": {"type": "integer"}}, {"n": "7"}, "variable 'n' must be an integer, not \"7\"",
     "invalid_variable"),
    ({"n": {"type": "integer"}}, {"n": 1.5}, "must be an integer", "invalid_variable"),
    ({"n": {"type": "integer"}}, {"n": True}, "must be an integer", "invalid_variable"),
    ({"s": {}}, {"s": 5}, "variable 's' must be a string, not 5", "invalid_variable"),
    ({"s": {}}, {"s": None}, "must be a string, not null", "invalid_variable"),
    ({"s": {}}, {"s": ["a"]}, "must be a string", "invalid_variable"),
    ({"s": {"max_length": 3}}, {"s": "abcd"}, "variable 's' is longer than 3 characters",
     "invalid_variable"),
    ({"s": {}}, ["s"], "'variables' must be a JSON object", None),
])
def test_bad_variables_are_a_400_naming_each(variables: dict[str, Any], given: Any,
                                             message: str, code: str | None) -> None:
    with pytest.raises(ProviderError) as caught:
        render(version(**variables), given)
    error = caught.value
    assert (error.kind, error.client_status(), error.code) == ("bad_request", 400, code)
    assert message in error.message
    assert error.openai_body()["error"]["type"] == "invalid_request_error"


def test_render_makes_a_chat_request_with_the_parameters() -> None:
    prompt = ai_config(LESSON).prompts[0]
    served = prompt.version()
    assert served is not None
    call = parse_call({"variables": {"text": "Photosynthesis."}, "stream": True,
                       "user": "u1"})
    assert call.request(served) == {
        "model": "gpt-fast", "temperature": 0.2, "max_tokens": 400, "stream": True,
        "user": "u1",
        "messages": [{"role": "system", "content": "You summarise for grade 5."},
                     {"role": "user", "content": "Photosynthesis."}]}


@pytest.mark.parametrize(("body", "says"), [
    ({"variable": {}}, "unknown field 'variable'"),
    ({"model": "x"}, "unknown field 'model'"),
    ({"variables": "text"}, "'variables' must be a JSON object"),
    ({"version": "2"}, "'version' must be a positive integer"),
    ({"version": 0}, "'version' must be a positive integer"),
    ({"stream": "yes"}, "'stream' must be a JSON boolean"),
    ({"user": 5}, "'user' must be a JSON string"),
])
def test_bad_call_bodies(body: dict[str, Any], says: str) -> None:
    with pytest.raises(ProviderError, match=says):
        parse_call(body)


def _with(change: dict[str, Any], prompt: dict[str, Any] | None = None) -> dict[str, Any]:
    prompt = dict(prompt or LESSON)
    prompt["versions"] = [{**prompt["versions"][0], **change}]
    return prompt


@pytest.mark.parametrize(("prompts", "extra", "says"), [
    ([_with({"model": "gpt-slow"})], {}, "unknown model 'gpt-slow' (not in ai.models)"),
    ([_with({"variables": {"text": {}}})], {}, "variable 'grade' is used but not declared"),
    ([_with({"variables": {"text": {}, "grade": {}, "extra": {}}})], {},
     "variable 'extra' is declared but no message uses it"),
    ([_with({"messages": [{"role": "user", "content": "{{ text.body }}"}]})], {},
     "messages[0]: '{{ text.body }}' at character 0 is not a variable"),
    ([_with({"parameters": {"model": "x"}})], {}, "parameters may not set 'model'"),
    ([_with({"variables": {"text": {"required": True, "default": "x"}}, "grade": {}})], {},
     "a required variable has no default"),
    ([_with({"variables": {"text": {"type": "integer", "max_length": 3}, "grade": {}}})],
     {}, "max_length is for string variables"),
    ([_with({"variables": {"text": {"type": "integer", "default": "x"}, "grade": {}}})],
     {}, "the default 'x' is not of type integer"),
    ([{**LESSON, "versions": LESSON["versions"] * 2}], {}, "version 1 is given twice"),
    ([{**LESSON, "active": 2}], {}, "active version 2 is not one of its versions"),
    ([LESSON, LESSON], {}, "duplicate name in ai.prompts: 'lesson-summary'"),
    ([{**LESSON, "name": "openapi.json"}], {}, "prompt name 'openapi.json' is reserved"),
    ([LESSON], {"prompts_path": "/v1"}, "overlaps the AI endpoints"),
    ([LESSON], {"prompts_path": "/v1/chat"}, "overlaps the AI endpoints"),
    ([LESSON], {"path": "/api/v1", "prompts_path": "/api"}, "overlaps the AI endpoints"),
    ([LESSON], {"prompts_path": "prompts"}, "must be a plain path"),
    ([LESSON], {"prompts_path": "/"}, "must be a plain path"),
])
def test_config_errors(prompts: list[dict[str, Any]], extra: dict[str, Any],
                       says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ai_config(*prompts, **extra)
    assert says in str(caught.value)


@pytest.mark.parametrize("prompts_path", ["/prompts", "/v1/prompts", "/api/prompts/"])
def test_prompts_path_beside_the_ai_endpoints(prompts_path: str) -> None:
    assert ai_config(LESSON, prompts_path=prompts_path).prompts_path == prompts_path.rstrip("/")


def test_the_served_version_is_active_else_the_highest() -> None:
    two = {**LESSON["versions"][0], "version": 2}
    newest = ai_config({**LESSON, "versions": [two, LESSON["versions"][0]]}).prompts[0]
    assert [newest.version().version, newest.version(1).version] == [2, 1]  # type: ignore[union-attr]
    pinned = ai_config({**LESSON, "versions": [LESSON["versions"][0], two],
                        "active": 1}).prompts[0]
    assert pinned.version().version == 1  # type: ignore[union-attr]
    assert pinned.version(3) is None
    assert describe(pinned, pinned.versions)["version"] == 1


def test_request_schema_accepts_what_render_accepts() -> None:
    served = ai_config(LESSON).prompts[0].version()
    assert served is not None
    schema = request_schema(served, [1])
    jsonschema.Draft202012Validator.check_schema(schema)
    check = jsonschema.Draft202012Validator(schema)
    good: list[dict[str, Any]] = [
        {"variables": {"text": "t"}},
        {"variables": {"text": "t", "grade": "3"}, "stream": True, "version": 1, "user": "u"}]
    bad: list[dict[str, Any]] = [{}, {"variables": {}}, {"variables": {"text": 5}},
           {"variables": {"text": "t", "extra": "x"}}, {"variables": {"text": "t"}, "x": 1},
           {"variables": {"text": "t" * 51}}, {"variables": {"text": "t"}, "version": 9}]
    for body in good:
        assert not list(check.iter_errors(body)), body
        render(served, body["variables"])
    for body in bad:
        assert list(check.iter_errors(body)), body
    assert schema["properties"]["variables"]["properties"]["grade"] == {
        "type": "string", "default": "5"}
    assert schema["properties"]["variables"]["required"] == ["text"]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


@pytest.mark.parametrize(("auth", "schemes"), [
    (None, {}),
    ((("authorization", "x-api-key"), True, False),
     {"bearer": {"type": "http", "scheme": "bearer", "description": "the consumer's key"},
      "header-x-api-key": {"type": "apiKey", "in": "header", "name": "x-api-key"}}),
    ((("apikey",), False, True),
     {"query-apikey": {"type": "apiKey", "in": "query", "name": "apikey"}}),
])
def test_openapi_document_structure(auth: Any, schemes: dict[str, Any]) -> None:
    prompt = ai_config(LESSON).prompts[0]
    doc = openapi_document([(prompt, prompt.versions)], "/prompts", auth)
    assert doc["openapi"].startswith("3.1.")
    assert set(doc["paths"]) == {"/prompts/lesson-summary",
                                 "/prompts/lesson-summary/versions/1"}
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for item in doc["paths"].values():
        assert set(item) == {"post"}
        operation = item["post"]
        assert set(operation["responses"]) >= {"200", "400", "404"}
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        jsonschema.Draft202012Validator.check_schema(schema)
    for name, schema in doc["components"]["schemas"].items():
        assert name.replace("-", "").isalnum()
        jsonschema.Draft202012Validator.check_schema(schema)
    for ref in _refs(doc):
        assert ref.removeprefix("#/components/schemas/") in doc["components"]["schemas"]
    assert doc["components"].get("securitySchemes", {}) == schemes
    assert doc.get("security", []) == [{name: []} for name in schemes]


def test_the_docs_example_loads_and_renders() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "ai.md").read_text()
    (block,) = re.findall(r"```yaml title=\"Prompts as APIs\"\n(.*?)```", page, flags=re.S)
    config = load_config_text(block, "docs/ai.md", env={})
    assert config.ai is not None
    (prompt,) = config.ai.prompts
    served = prompt.version()
    assert served is not None
    request = render(served, {"text": "Plants make sugar from light."})
    assert request["messages"][0] == {"role": "system", "content": "You summarise for grade 5."}
    with pytest.raises(ProviderError) as caught:
        render(served, {"txt": "x"})
    assert str(caught.value) in page
