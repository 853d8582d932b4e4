"""Every plugin has a page (docs/plugins/NAME.md) whose configuration table agrees
with its config model and whose YAML example loads and uses it; the index lists them
all.  Also the tooling itself (campusgate.plugins.docs)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from campusgate.config.loader import ConfigError
from campusgate.plugins import docs
from campusgate.plugins.base import PluginConfig
from campusgate.plugins.registry import plugin_classes

PAGES = Path(__file__).resolve().parents[2] / "docs" / "plugins"
PLUGINS = sorted(plugin_classes())


class AnyEnv(Mapping[str, str]):
    """Examples may use ``${VAR}``: every variable is set, to a placeholder."""

    def __getitem__(self, key: str) -> str:
        return f"example-{key.lower()}-0123456789abcdef0123456789abcdef"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def page(name: str) -> str:
    path = PAGES / f"{name}.md"
    if not path.is_file():
        pytest.fail(f"plugin {name!r} has no page: write docs/plugins/{name}.md")
    return path.read_text(encoding="utf-8")


# ---------------------------------------------------------------- the pages


@pytest.mark.parametrize("name", PLUGINS)
def test_configuration_table_agrees_with_the_model(name: str) -> None:
    problems = docs.check_page(plugin_classes()[name], page(name))
    assert not problems, f"docs/plugins/{name}.md: " + "; ".join(problems) + (
        f"\n(python -m campusgate.plugins.docs {name} prints the table)")


@pytest.mark.parametrize("name", PLUGINS)
def test_example_loads_and_uses_the_plugin(name: str) -> None:
    try:
        specs = docs.example_specs(page(name), AnyEnv())
    except (ValueError, ConfigError) as exc:
        pytest.fail(f"docs/plugins/{name}.md: the example does not load:\n{exc}")
    assert name in {spec.name for _, spec in specs}, (
        f"docs/plugins/{name}.md: the example does not attach {name}")


def index_rows() -> dict[str, tuple[str, str, str]]:
    """README rows: plugin name -> (link target, priority, what it does)."""
    text = (PAGES / "README.md").read_text(encoding="utf-8")
    rows = {}
    for match in re.finditer(r"^\| \[([a-z0-9-]+)\]\(([^)]+)\) \| (\d+) \| (.+) \|$", text, re.M):
        rows[match.group(1)] = (match.group(2), match.group(3), match.group(4))
    return rows


def test_the_index_lists_every_plugin_with_its_priority() -> None:
    rows = index_rows()
    for name, cls in plugin_classes().items():
        assert name in rows, f"docs/plugins/README.md does not list {name}"
        target, priority, about = rows[name]
        assert target == f"{name}.md"
        assert int(priority) == cls.priority, f"{name}: priority {priority} != {cls.priority}"
        assert about.startswith("*edge*") == (not cls.attaches_to_consumers()), (
            f"{name}: mark *edge* exactly the plugins that cannot be consumer-scoped")


def test_every_page_is_a_known_plugin() -> None:
    stale = {p.stem for p in PAGES.glob("*.md")} - set(plugin_classes()) - {"README"}
    indexed_unknown = set(index_rows()) - set(plugin_classes())
    # pages of plugins being written right now may come before their code
    assert not stale - indexed_unknown, f"pages of no plugin and not in the index: {stale}"


# ---------------------------------------------------------------- the tooling


class Sample(PluginConfig):
    #: The name,
    #: over two lines.
    name: str
    count: int = Field(default=3, description="How many | at most.")
    tags: list[str] = Field(default_factory=lambda: ["a", "b"])
    mode: str | None = None
    """Which mode (``fast`` or ``slow``)."""
    limits: dict[str, float] = Field(default_factory=dict)


class Nested(BaseModel):
    on: bool = True


class WithNested(Sample):
    nested: Nested = Field(default_factory=Nested)
    #: Overridden here.
    count: int = 5


class SamplePlugin:
    config_model = Sample


TABLE = """\
| field | type | default | description |
|---|---|---|---|
| `name` | string | *required* | The name, over two lines. |
| `count` | integer | `3` | How many \\| at most. |
| `tags` | list of string | `["a", "b"]` |  |
| `mode` | string or null | `null` | Which mode (`fast` or `slow`). |
| `limits` | map of number | `{}` |  |
"""


def test_config_table_renders_types_defaults_and_descriptions() -> None:
    assert docs.config_table(SamplePlugin) == TABLE


def test_config_table_takes_inherited_fields_and_overrides() -> None:
    rows = {r.field: r for r in docs.table_rows(docs.config_table(WithNested))}
    assert rows["count"].default == "`5`" and rows["count"].description == "Overridden here."
    assert rows["name"].description == "The name, over two lines."
    assert (rows["nested"].type, rows["nested"].default) == ("object", '`{"on": true}`')


@pytest.mark.parametrize("name", PLUGINS)
def test_a_generated_table_passes_the_check(name: str) -> None:
    cls = plugin_classes()[name]
    generated = f"# {name}\n\n## Configuration\n\n{docs.config_table(cls)}\n## Example\n"
    assert docs.check_page(cls, generated) == []


@pytest.mark.parametrize("edit, problem", [
    (lambda t: t.replace("| `tags` | list of string | `[\"a\", \"b\"]` |  |\n", ""),
     "fields missing from the table: tags"),
    (lambda t: t + "| `colour` | string | `\"red\"` | |\n", "fields the model does not: colour"),
    (lambda t: t.replace("`3`", "`4`"), "count: the table says default `4`"),
    (lambda t: t.replace("*required*", "`\"x\"`"), "name: required"),
    (lambda t: t.replace("| field | type |", "| name | type |"), "columns are"),
])
def test_check_page_finds_disagreements(edit: object, problem: str) -> None:
    assert callable(edit)
    text = "## Configuration\n\n" + edit(TABLE)
    assert any(problem in p for p in docs.check_page(SamplePlugin, text)), (
        docs.check_page(SamplePlugin, text))


@pytest.mark.parametrize("cell", ["`3`", "3", " `3` "])
def test_defaults_compare_by_value_not_spelling(cell: str) -> None:
    text = "## Configuration\n\n" + TABLE.replace("`3`", cell).replace(
        '`["a", "b"]`', "`['a','b']`").replace("`null`", "None")
    assert docs.check_page(SamplePlugin, text) == []


def test_missing_sections_are_reported() -> None:
    assert docs.check_page(SamplePlugin, "# x\n") == ["no '## Configuration' section"]
    with pytest.raises(ValueError, match="no '## Example'"):
        docs.example_specs("# x\n", AnyEnv())


def test_an_example_needs_exactly_one_yaml_block() -> None:
    block = "```yaml\nplugins: [{name: request-id}]\n```\n"
    assert [s.name for _, s in docs.example_specs(f"## Example\n\n{block}", AnyEnv())] == [
        "request-id"]
    with pytest.raises(ValueError, match="2 yaml blocks"):
        docs.example_specs(f"## Example\n\n{block}\n{block}", AnyEnv())
    with pytest.raises(ConfigError, match="colour"):
        docs.example_specs("## Example\n```yaml\nplugins: [{name: request-id, config: "
                           "{colour: red}}]\n```\n", AnyEnv())


def test_the_command_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert docs.main(["request-termination"]) == 0
    out = capsys.readouterr().out
    assert out == docs.config_table(plugin_classes()["request-termination"])
    assert docs.main(["no-such-plugin"]) == 2
    assert "request-termination" in capsys.readouterr().err
