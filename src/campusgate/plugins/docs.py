"""Plugin reference pages, checked against the plugins' config models.

Each plugin has ``docs/plugins/<name>.md`` with a ``## Configuration`` table (field,
type, default, description) and a ``## Example`` YAML block.  :func:`config_table`
renders the table from the pydantic model; :func:`check_page` tells how a page
disagrees with the model.  Authors print the table to paste with::

    python -m campusgate.plugins.docs cors

Descriptions come from ``Field(description=...)``, else from the ``#:`` comment lines
above the field, else from a docstring right below it (the forms Sphinx reads).
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import sys
import textwrap
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from campusgate.config.common import PluginSpec
from campusgate.config.loader import load_config_text

__all__ = [
    "PageRow",
    "check_page",
    "config_table",
    "default_cell",
    "example_specs",
    "section",
    "table_rows",
    "type_name",
]

REQUIRED = "*required*"
HEADER = "| field | type | default | description |"


# ---------------------------------------------------------------- rendering


def type_name(tp: Any) -> str:
    """A reader's name for an annotation: ``list of string``, ``integer or null``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        names = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(names + (["null"] if type(None) in args else []))
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(a) for a in args)
    if origin in (list, tuple, set, frozenset):
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"map of {type_name(args[1])}" if args else "map"
    simple = {str: "string", int: "integer", float: "number", bool: "boolean",
              type(None): "null", Any: "any"}
    if tp in simple:
        return simple[tp]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "object"
    return getattr(tp, "__name__", str(tp))


def default_cell(field: FieldInfo) -> str:
    """The default as JSON in backticks, or ``*required*``."""
    if field.is_required():
        return REQUIRED
    value = field.get_default(call_default_factory=True)
    text = json.dumps(to_jsonable_python(value), separators=(", ", ": "))
    return f"`{text}`"


def _comment_docs(model: type[BaseModel]) -> Iterator[tuple[str, str]]:
    """(field, text) from ``#:`` comments above and docstrings below class attributes."""
    try:
        lines, _ = inspect.getsourcelines(model)
    except (OSError, TypeError):
        return
    source = textwrap.dedent("".join(lines))
    src_lines = source.splitlines()
    body = ast.parse(source).body[0]
    if not isinstance(body, ast.ClassDef):
        return
    for i, node in enumerate(body.body):
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        comment: list[str] = []
        j = node.lineno - 2
        while j >= 0 and src_lines[j].strip().startswith("#:"):
            comment.insert(0, src_lines[j].strip()[2:].strip())
            j -= 1
        nxt = body.body[i + 1] if i + 1 < len(body.body) else None
        if comment:
            yield node.target.id, " ".join(comment)
        elif (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
              and isinstance(nxt.value.value, str)):
            yield node.target.id, " ".join(inspect.cleandoc(nxt.value.value).split())


def descriptions(model: type[BaseModel]) -> dict[str, str]:
    """Each field's description (empty when it has none)."""
    found: dict[str, str] = {}
    for klass in reversed(model.__mro__):  # subclasses override their bases
        if isinstance(klass, type) and issubclass(klass, BaseModel) and klass is not BaseModel:
            found.update(_comment_docs(klass))
    return {name: field.description or found.get(name, "")
            for name, field in model.model_fields.items()}


def _cell(text: str) -> str:
    """Table-cell text: one line, pipes escaped, reST double-backtick code as markdown."""
    text = re.sub(r"``(.+?)``", r"`\1`", " ".join(text.split()))
    return text.replace("|", "\\|")


def config_table(cls: type[Any]) -> str:
    """The ``## Configuration`` table of a plugin class (or a config model)."""
    model: type[BaseModel] = getattr(cls, "config_model", cls)
    about = descriptions(model)
    rows = [HEADER, "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        rows.append(f"| `{name}` | {_cell(type_name(field.annotation))} | "
                    f"{_cell(default_cell(field))} | {_cell(about[name])} |")
    return "\n".join(rows) + "\n"


# ---------------------------------------------------------------- checking pages


@dataclass(frozen=True)
class PageRow:
    field: str
    type: str
    default: str
    description: str


def section(page: str, title: str) -> str | None:
    """The text under the level-2 heading ``title``, up to the next level-2 heading."""
    match = re.search(rf"^## {re.escape(title)}[ \t]*\n(.*?)(?=^## |\Z)", page, re.M | re.S)
    return match.group(1) if match else None


def _split_row(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [c.strip().replace("\\|", "|") for c in cells]


def table_rows(text: str) -> list[PageRow]:
    """The rows of the first markdown table in ``text``; ValueError if its header is
    not ``field | type | default | description``."""
    lines = text.strip().splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("|")), None)
    if start is None:
        raise ValueError("no table")
    header = [c.lower() for c in _split_row(lines[start])]
    if header != ["field", "type", "default", "description"]:
        raise ValueError(f"the table's columns are {header}, not field, type, default, "
                         "description")
    rows = []
    for line in lines[start + 2:]:
        if not line.lstrip().startswith("|"):
            break
        cells = [*_split_row(line), "", "", "", ""]
        rows.append(PageRow(cells[0].strip("`"), cells[1], cells[2], cells[3]))
    return rows


def _cell_value(cell: str) -> Any:
    """A default cell's value: JSON, else a Python literal, else the bare text."""
    text = cell.strip().strip("`").strip()
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError):
            continue
    return text


def check_page(cls: type[Any], page: str) -> list[str]:
    """How the page of plugin ``cls`` disagrees with its config model (empty: it agrees)."""
    model: type[BaseModel] = cls.config_model
    config = section(page, "Configuration")
    if config is None:
        return ["no '## Configuration' section"]
    try:
        rows = table_rows(config)
    except ValueError as exc:
        return [f"## Configuration: {exc}"]
    problems = []
    documented = {row.field: row for row in rows}
    fields = model.model_fields
    missing = [f for f in fields if f not in documented]
    extra = [f for f in documented if f not in fields]
    if missing:
        problems.append(f"fields missing from the table: {', '.join(missing)}")
    if extra:
        problems.append(f"the table has fields the model does not: {', '.join(extra)}")
    for name, field in fields.items():
        row = documented.get(name)
        if row is None:
            continue
        if field.is_required():
            if row.default.strip("*_` ").lower() not in ("required", "", "-", "—"):
                problems.append(f"{name}: required, but the table gives default {row.default}")
            continue
        expected = to_jsonable_python(field.get_default(call_default_factory=True))
        if _cell_value(row.default) != expected:
            problems.append(f"{name}: the table says default {row.default}, the model "
                            f"{default_cell(field)}")
    return problems


def example_specs(page: str, env: typing.Mapping[str, str]) -> list[tuple[str, PluginSpec]]:
    """Load the page's ``## Example`` YAML block with the config loader; the plugin
    specs it attaches, with where.  Raises ValueError when there is no single block,
    and the loader's ``ConfigError`` when it does not load."""
    example = section(page, "Example")
    if example is None:
        raise ValueError("no '## Example' section")
    blocks = re.findall(r"^```ya?ml[ \t]*\n(.*?)^```", example, re.M | re.S)
    if len(blocks) != 1:
        raise ValueError(f"'## Example' has {len(blocks)} yaml blocks, not one")
    return load_config_text(blocks[0], source="example", env=env).plugin_specs()


def main(argv: list[str]) -> int:
    from campusgate.plugins.registry import plugin_classes

    classes = plugin_classes()
    if len(argv) != 1 or argv[0] not in classes:
        print(f"usage: python -m campusgate.plugins.docs NAME\nplugins: "
              f"{', '.join(sorted(classes))}", file=sys.stderr)
        return 2
    sys.stdout.write(config_table(classes[argv[0]]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
