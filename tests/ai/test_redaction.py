"""Request-side redaction (``ai/redaction.py``, ``ai/directory_names.py``,
``config/ai_redaction.py``): what is replaced, what must be left alone, the walk over
a canonical request, names from the directory, and the settings' checks."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from campusgate.ai.directory_names import DirectoryNames, NameIndex
from campusgate.ai.errors import ProviderError
from campusgate.ai.redaction import Redactor
from campusgate.config.ai_redaction import AiRedaction
from campusgate.config.loader import load_config_text

STUDENT_ID = {"name": "student_id", "regex": r"\bS\d{7}\b"}
PEOPLE = [("Maria", "Garcia"), ("Sam", "Lee"), ("May", "Young"), ("Mary Ann", "de la Cruz"),
          ("JOHN", "O'BRIEN"), ("Grace", "Will")]


def redactor(index: NameIndex | None = None, **settings: Any) -> Redactor:
    config = AiRedaction.model_validate({"enabled": True, "patterns": [STUDENT_ID],
                                         **settings})
    return Redactor(config, lambda: index)


REDACTED = [
    # emails
    ("write to jane.doe@school.edu today", "write to [email] today", "email"),
    ("a+tag@sub.k12.ca.us.", "[email].", "email"),
    ("<maría.lópez@escuela.es>", "<[email]>", "email"),
    ("mailto:x_y-z@example.org?subject=hi", "mailto:[email]?subject=hi", "email"),
    # phones, North American and international
    ("call (415) 555-2671", "call [phone]", "phone"),
    ("call (415)555-2671", "call [phone]", "phone"),
    ("call 415-555-2671", "call [phone]", "phone"),
    ("call 415.555.2671", "call [phone]", "phone"),
    ("call 415 555 2671", "call [phone]", "phone"),
    ("call +1 415 555 2671", "call [phone]", "phone"),
    ("call +1-415-555-2671", "call [phone]", "phone"),
    ("call 1-800-555-0100!", "call [phone]!", "phone"),
    ("call +14155552671", "call [phone]", "phone"),
    ("call +44 20 7946 0958", "call [phone]", "phone"),
    ("call +33 1 23 45 67 89", "call [phone]", "phone"),
    ("call +49-30-901820", "call [phone]", "phone"),
    # ids
    ("SSN 123-45-6789.", "SSN [ssn].", "ssn"),
    ("SSN 123 45 6789", "SSN [ssn]", "ssn"),
    ("student S1234567 is absent", "student [student_id] is absent", "student_id"),
]

LEFT_ALONE = [
    "on 2024-05-17, 05/17/2024 and 17.05.2024",
    "in 1999 and 2023-2024, at 10:30",
    "it costs $1,234.56 or 1.234.567,00 EUR",
    "ZIP 94103 and 94103-1234",
    "order 4155552671 and invoice ORD-123-456-7890",
    "see https://example.com/a?b=c and https://medium.com/@ada/post",
    "version 1.2.3, score 98.6, pi 3.14159265358979",
    "not an ssn: 000-12-3456, 666-12-3456, 900-12-3456, 123-45-67890",
    "student s1234567x, S12345678",
    "the @ sign and user@ or @host.com",
    "+1 (tiny) count",
]


@pytest.mark.parametrize(("text", "expected", "kind"), REDACTED)
def test_personal_data_is_replaced_and_counted(text: str, expected: str, kind: str) -> None:
    out, counts = redactor().redact_text(text)
    assert out == expected
    assert counts == {kind: 1}


@pytest.mark.parametrize("text", LEFT_ALONE)
def test_what_only_looks_like_personal_data_is_left(text: str) -> None:
    assert redactor().redact_text(text) == (text, {})


def test_an_id_inside_an_address_is_part_of_the_address() -> None:
    out, counts = redactor().redact_text("S1234567@school.edu, 415-555-2671@sms.example")
    assert out == "[email], [email]"
    assert counts == {"email": 2}


def test_kinds_replacement_and_patterns_are_the_settings() -> None:
    only = redactor(kinds=["email"], patterns=[], replacement="<{kind} removed>")
    assert only.redact_text("a@b.org 415-555-2671 123-45-6789") == (
        "<email removed> 415-555-2671 123-45-6789", {"email": 1})
    local = redactor(patterns=[{"name": "phone", "regex": r"\b\d{3}-\d{4}\b"}])
    assert local.redact_text("555-0199 or 415-555-2671") == ("[phone] or [phone]",
                                                            {"phone": 2})


NAMED = [
    ("Maria Garcia wrote it", "[name] wrote it"),
    ("Garcia, Maria wrote it", "[name] wrote it"),
    ("Maria J. Garcia and Maria Elena Garcia", "[name] and [name]"),
    ("Mary Ann de la Cruz's essay", "[name]'s essay"),
    ("John O'Brien.", "[name]."),
    ("ask Sam Lee\u2019s group", "ask [name]\u2019s group"),
]

NOT_NAMED = [
    "Maria Lopez and Sam Smith",  # given and family of different people
    "May I ask? Will Grace come? Young people.",  # given names, common words
    "maria garcia",  # case-sensitive
    "Sam. Lee said",  # two sentences
    "Garcia and Lee are family names",  # alone: off by default
]


@pytest.mark.parametrize(("text", "expected"), NAMED)
def test_full_names_of_the_directory_are_redacted(text: str, expected: str) -> None:
    out, counts = redactor(NameIndex.build(PEOPLE)).redact_text(text)
    assert out == expected
    assert counts == {"name": expected.count("[name]")}


@pytest.mark.parametrize("text", NOT_NAMED)
def test_names_that_are_not_a_directory_person_are_left(text: str) -> None:
    assert redactor(NameIndex.build(PEOPLE)).redact_text(text) == (text, {})


def test_family_names_alone_when_asked() -> None:
    alone = redactor(NameIndex.build(PEOPLE),
                     names={"family_alone": True, "ignore": ["Young"], "min_length": 4})
    out, counts = alone.redact_text("Garcia said; Young people; Lee? O'Brien, Will")
    assert out == "[name] said; Young people; Lee? [name], [name]"
    assert counts == {"name": 3}


def test_names_until_loaded_and_without_the_kind_are_not_redacted() -> None:
    assert redactor(None).redact_text("Maria Garcia") == ("Maria Garcia", {})
    assert redactor(NameIndex.build(PEOPLE), kinds=["email"]).redact_text(
        "Maria Garcia") == ("Maria Garcia", {})


def test_an_index_of_fifty_thousand_people_is_sets_not_a_regex() -> None:
    people = [(f"Given{i:05d}x", f"Family{i:05d}y") for i in range(50_000)]
    index = NameIndex.build([*people, ("Maria", "Garcia")])
    assert index.people == 50_001 and len(index.candidates.pattern) < 200
    text = "Given12345x Family12345y met Maria Garcia and Given1x Family2y. " * 150
    out, counts = redactor(index).redact_text(text)
    assert counts == {"name": 300} and "Family12345y" not in out


def chat_request() -> dict[str, Any]:
    return {"model": "m", "user": "jane@school.edu", "metadata": {"who": "415-555-2671"},
            "tools": [{"type": "function", "function": {
                "name": "mail", "description": "send to a@b.org",
                "parameters": {"type": "object"}}}],
            "messages": [
                {"role": "system", "content": "The student is Maria Garcia."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Mail jane@school.edu"},
                    {"type": "image_url", "image_url": {"url": "https://x/a@b.org.png"}},
                    {"type": "file", "file": {"file_data": "data:;base64,a@b.org"}}]},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {
                        "name": "mail", "arguments": json.dumps(
                            {"to": "jane@school.edu", "cc": ["S1234567"], "n": 2})}},
                    {"id": "c2", "type": "function", "function": {
                        "name": "mail", "arguments": "to jane@school.edu"}}]},
                {"role": "tool", "tool_call_id": "c1",
                 "content": "sent to jane@school.edu, 123-45-6789"},
                {"role": "assistant", "content": [{"type": "refusal", "refusal":
                                                   "not for Maria Garcia"}]},
                "not a message", {"role": "user", "content": 7}]}


def test_every_text_a_provider_reads_is_walked() -> None:
    chat = chat_request()
    counts = redactor(NameIndex.build(PEOPLE)).redact_chat(chat)
    assert counts == {"email": 5, "phone": 1, "student_id": 1, "ssn": 1, "name": 2}
    messages = chat["messages"]
    assert messages[0]["content"] == "The student is [name]."
    assert messages[1]["content"][0]["text"] == "Mail [email]"
    assert messages[1]["content"][1:] == chat_request()["messages"][1]["content"][1:]
    calls = messages[2]["tool_calls"]
    assert json.loads(calls[0]["function"]["arguments"]) == {
        "to": "[email]", "cc": ["[student_id]"], "n": 2}
    assert calls[1]["function"]["arguments"] == "to [email]"
    assert messages[3]["content"] == "sent to [email], [ssn]"
    assert messages[4]["content"][0]["refusal"] == "not for [name]"
    assert chat["user"] == "[email]" and chat["metadata"] == {"who": "[phone]"}
    assert chat["tools"] == chat_request()["tools"]  # the application's, not a person's


def test_a_request_with_nothing_to_redact_is_unchanged() -> None:
    chat = {"model": "m", "messages": [{"role": "user", "content": "Hello there"}]}
    assert redactor().redact_chat(chat) == {}
    assert chat == {"model": "m", "messages": [{"role": "user", "content": "Hello there"}]}


def test_embeddings_inputs_are_redacted_token_arrays_left() -> None:
    many: dict[str, Any] = {"input": ["a@b.org", [1, 2, 3], "plain"]}
    assert redactor().redact_embeddings(many) == {"email": 1}
    assert many["input"] == ["[email]", [1, 2, 3], "plain"]
    one = {"input": "call 415-555-2671"}
    assert redactor().redact_embeddings(one) == {"phone": 1}
    assert one["input"] == "call [phone]"


def test_more_text_than_max_chars_is_refused_not_sent() -> None:
    chat = {"messages": [{"role": "user", "content": "x" * 600},
                         {"role": "user", "content": "y" * 600}]}
    with pytest.raises(ProviderError) as refused:
        redactor(max_chars=1000).redact_chat(chat)
    assert refused.value.client_status() == 413
    assert "ai.redaction.max_chars" in refused.value.message


def test_only_the_configured_models() -> None:
    assert redactor(models=["gpt-fast"]).applies_to("gpt-fast")
    assert not redactor(models=["gpt-fast"]).applies_to("claude")
    assert redactor().applies_to("anything")
    assert not AiRedaction(models=[]).applies_to("anything")  # enabled: false


@pytest.mark.parametrize(("settings", "error"), [
    ({"patterns": [{"name": "bad", "regex": "(unclosed"}]},
     "redaction pattern 'bad': missing )"),
    ({"patterns": [{"name": "empty", "regex": "x*"}]}, "'empty' matches empty text"),
    ({"patterns": [{"name": "slow", "regex": r"(\w+\s?)+!"}]}, "'slow' repeats a group"),
    ({"patterns": [{"name": "slow2", "regex": r"(?:a|b+){2,}"}]}, "'slow2' repeats a group"),
    ({"kinds": ["student_id"]}, "'student_id' is not built in"),
    ({"replacement": "[{name}]"}, "may use {kind} and no other field"),
    ({"patterns": [{"name": "Bad Name", "regex": "x"}]}, "should match pattern"),
])
def test_bad_settings_are_config_errors(settings: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(error)):
        AiRedaction.model_validate({"enabled": True, **settings})


@pytest.mark.parametrize("regex", [r"\bS\d{7}\b", r"(?:\w++\s?)+!", r"(?>\w+\s?)+",
                                   r"(ab){2,5}", r"[(+]\d+", r"\d{3}-\d{2}-\d{4}"])
def test_safe_patterns_are_accepted(regex: str) -> None:
    AiRedaction.model_validate({"patterns": [{"name": "ok", "regex": regex}]})


def test_the_ai_page_example_loads_and_redacts_as_it_says() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "ai.md").read_text()
    section = page.split("## Student data protection", 1)[1]
    (block,) = re.findall(r"```yml\n(.*?)```", section, flags=re.S)
    config = load_config_text(block, "docs/ai.md", env={})
    assert config.ai is not None and config.ai.redaction.enabled
    assert Redactor(config.ai.redaction).redact_text(
        "S1234567 (jane@school.edu, 415-555-2671)") == (
        "[student_id] ([email], [phone])", {"student_id": 1, "email": 1, "phone": 1})


async def test_names_load_in_the_background_and_a_failure_is_logged_without_values(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    names = DirectoryNames(f"sqlite:///{tmp_path}/missing/none.db")
    names.start(3600)
    for _ in range(200):
        if any("cannot be loaded" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.01)
    names.stop()
    assert names.index is None
    assert any("cannot be loaded" in r.getMessage() for r in caplog.records)
