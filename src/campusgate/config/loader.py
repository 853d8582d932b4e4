"""Read ``campusgate.yaml`` into the typed model, with errors that point at lines.

Loading is four pure steps over the file's text:

1. parse with the *safe* YAML loader, keeping the composed node tree (it knows
   every value's line) next to the plain data built from it;
2. replace ``${VAR}`` and ``${VAR:-default}`` in string values from the
   environment (``$${`` stands for a literal ``${``);
3. validate with the pydantic model (:class:`~campusgate.config.model.Config`, or
   :class:`~campusgate.config.model.Entities` for ``campusgate apply``);
4. map every failure's location back to its YAML node, so that each
   :class:`Problem` reads ``FILE:LINE: services[0].routes[1].paths[0]: MESSAGE``.

Paths use the same form as JSON paths: mapping keys joined with ``.``, list
positions as ``[i]`` (0-based), keys that are not plain words quoted as ``["a.b"]``.

:func:`dump_yaml` is the inverse: readable YAML that omits defaults and loads back
to an equal model.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from campusgate.config.model import Config, Entities
from campusgate.config.writer import dump_yaml

__all__ = [
    "ConfigError",
    "Problem",
    "config_json_schema",
    "dump_yaml",
    "format_path",
    "load_config_file",
    "load_config_text",
    "load_entities_file",
    "parse_entities_text",
]

Loc = tuple[Any, ...]
M = TypeVar("M", bound=BaseModel)

#: Top-level keys of :class:`Config` that are not entities; ``apply`` ignores them.
BOOTSTRAP_KEYS = frozenset(Config.model_fields) - frozenset(Entities.model_fields)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config file: where (path and line) and what."""

    path: str
    message: str
    line: int | None = None

    def render(self, source: str) -> str:
        where = source if self.line is None else f"{source}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """A config file that cannot be used; ``str()`` gives one problem per line."""

    def __init__(self, problems: list[Problem], source: str = "<string>") -> None:
        super().__init__(problems)
        self.problems = problems
        self.source = source

    def __str__(self) -> str:
        return "\n".join(p.render(self.source) for p in self.problems)


# ---------------------------------------------------------------- public entry points


def load_config_file(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a whole config file (bootstrap settings and entities)."""
    return load_config_text(_read(path), source=str(path), env=env)


def load_config_text(
    text: str, source: str = "<string>", env: Mapping[str, str] | None = None
) -> Config:
    return _load(text, source, env, Config, drop=frozenset())


def load_entities_file(path: Path, env: Mapping[str, str] | None = None) -> Entities:
    """Read the entities of a file for ``campusgate apply`` (bootstrap keys are ignored)."""
    return parse_entities_text(_read(path), source=str(path), env=env)


def parse_entities_text(
    text: str, source: str = "<string>", env: Mapping[str, str] | None = None
) -> Entities:
    """Like :func:`load_config_text`, but only the entities; bootstrap keys are skipped
    without being validated (and their ``${VAR}`` references are not resolved)."""
    return _load(text, source, env, Entities, drop=BOOTSTRAP_KEYS)


def config_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of ``campusgate.yaml``, for editors and CI."""
    schema = Config.model_json_schema()
    schema.pop("title", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "campusgate configuration",
        **schema,
    }


def format_path(loc: Loc) -> str:
    """``("services", 0, "routes")`` -> ``services[0].routes``."""
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += '["' + str(part).replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return out


# ---------------------------------------------------------------- the pipeline


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        problem = Problem("", f"cannot read file: {exc.strerror or exc}")
        raise ConfigError([problem], str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem("", f"not UTF-8 text: {exc.reason}")], str(path)) from None


def _load(
    text: str,
    source: str,
    env: Mapping[str, str] | None,
    model: type[M],
    drop: frozenset[str],
) -> M:
    root, data, problems = _parse(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        line = root.start_mark.line + 1 if root is not None else None
        problem = Problem("", f"the top level must be a mapping, got {kind}", line)
        raise ConfigError([problem], source)
    data = {k: v for k, v in data.items() if k not in drop}
    subst = _Substitution(os.environ if env is None else env)
    data = subst.walk(data, ())
    if subst.problems:
        # Validating values whose references are unresolved would only add noise.
        problems += [
            Problem(format_path(loc), msg, _line_at(root, loc)) for loc, msg in subst.problems
        ]
        raise ConfigError(_sorted(problems), source)
    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_input=False):
            message = subst.mask(_message(model, err))
            if not err["loc"] and message.startswith("duplicate name in "):
                # The model names the duplicate; the loader can say where it is.
                problems += [
                    Problem(format_path(loc), msg, _line_at(root, loc))
                    for loc, msg in _duplicate_names(data)
                ] or [Problem("", message, _line_at(root, ()))]
                continue
            problems.append(Problem(format_path(err["loc"]), message, _line_at(root, err["loc"])))
    if problems:
        raise ConfigError(_sorted(problems), source)
    return result


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0))


def _parse(text: str, source: str) -> tuple[yaml.Node | None, Any, list[Problem]]:
    """Safe-load ``text``; return its node tree, its data and any duplicate keys."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None, []
        # Before construction: merge keys (``<<``) are legitimately overridden later.
        duplicates = list(_duplicate_keys(root, (), set()))
        return root, loader.construct_document(root), duplicates
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = ", ".join(s for s in (exc.context, exc.problem) if s) or "syntax error"
        line = mark.line + 1 if mark is not None else None
        raise ConfigError([Problem("", f"invalid YAML: {what}", line)], source) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem("", f"invalid YAML: {exc}")], source) from None
    finally:
        loader.dispose()


def _duplicate_keys(node: yaml.Node, loc: Loc, seen: set[int]) -> Iterator[Problem]:
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            if name is not None and key.tag != "tag:yaml.org,2002:merge":
                line = key.start_mark.line + 1
                if name in first:
                    yield Problem(
                        format_path((*loc, name)),
                        f"duplicate key {name!r} (first at line {first[name]})",
                        line,
                    )
                else:
                    first[name] = line
            yield from _duplicate_keys(value, (*loc, name), seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*loc, i), seen)


def _duplicate_names(data: dict[str, Any]) -> list[tuple[Loc, str]]:
    """Second and later uses of an upstream, service or route name (routes are
    unique across services), at the ``name`` key that repeats it."""
    found: list[tuple[Loc, str]] = []
    seen: dict[tuple[str, str], Loc] = {}

    def visit(kind: str, item: Any, loc: Loc) -> None:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            return
        first = seen.setdefault((kind, name), loc)
        if first != loc:
            found.append(
                ((*loc, "name"), f"duplicate {kind} name {name!r} (see {format_path(first)})")
            )

    for i, upstream in enumerate(_list(data.get("upstreams"))):
        visit("upstream", upstream, ("upstreams", i))
    for i, service in enumerate(_list(data.get("services"))):
        visit("service", service, ("services", i))
        routes = service.get("routes") if isinstance(service, dict) else None
        for j, route in enumerate(_list(routes)):
            visit("route", route, ("services", i, "routes", j))
    return found


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _line_at(root: yaml.Node | None, loc: Loc) -> int | None:
    """The 1-based line of the node at ``loc``, or of its deepest existing ancestor.

    A mapping entry points at its key's line (that is where a reader looks for
    ``routes:``); a list item at the item's first line.
    """
    if root is None:
        return None
    node, line = root, root.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            # Last match wins, as in construction (merged keys come first).
            for key, value in reversed(node.value):
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    node, line = value, key.start_mark.line + 1
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


# ---------------------------------------------------------------- ${VAR} substitution

_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)
_BAD_REFERENCE = "invalid reference: write ${NAME} or ${NAME:-default} ($${ for a literal ${)"


@dataclass
class _Substitution:
    """Replaces references in string values; remembers what it could not resolve."""

    env: Mapping[str, str]
    problems: list[tuple[Loc, str]] = field(default_factory=list)
    #: Values taken from the environment, so that messages can hide them again.
    used: dict[str, str] = field(default_factory=dict)

    def walk(self, value: Any, loc: Loc) -> Any:
        if isinstance(value, str):
            return self.string(value, loc) if "${" in value else value
        if isinstance(value, dict):
            return {k: self.walk(v, (*loc, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.walk(v, (*loc, i)) for i, v in enumerate(value)]
        return value

    def string(self, text: str, loc: Loc) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            body = match.group(1)
            parsed = _BODY.fullmatch(body) if body is not None else None
            if parsed is None:
                self.problems.append((loc, _BAD_REFERENCE))
                return match.group(0)
            name, default = parsed.group(1), parsed.group(2)
            value = self.env.get(name)
            if value:
                self.used[value] = "${" + name + "}"
                return value
            if default is not None:
                return default
            if value is None:
                self.problems.append((loc, f"environment variable {name} is not set"))
                return match.group(0)
            return value

        return _REFERENCE.sub(replace, text)

    def mask(self, message: str) -> str:
        """Put ``${NAME}`` back where a message quotes a value from the environment."""
        for value in sorted(self.used, key=len, reverse=True):
            if len(value) >= 3:
                message = message.replace(value, self.used[value])
        return message


# ---------------------------------------------------------------- error messages


def _message(model: type[BaseModel], err: ErrorDetails) -> str:
    if err["type"] == "extra_forbidden":
        key = str(err["loc"][-1]) if err["loc"] else "?"
        allowed = _fields_at(model, err["loc"][:-1])
        close = difflib.get_close_matches(key, allowed, n=1)
        if close:
            return f"unknown key {key!r}; did you mean {close[0]!r}?"
        if allowed:
            return f"unknown key {key!r}; expected one of: {', '.join(allowed)}"
        return f"unknown key {key!r}"
    if err["type"] == "missing":
        return "required key is missing"
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if len(msg) > 1 and msg[0].isupper() and msg[1].islower():
        msg = msg[0].lower() + msg[1:]
    return msg


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """Field names of the model found at ``loc`` inside ``model`` (empty if none)."""
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    current = _unwrap_optional(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _step(tp: Any, part: Any) -> Any:
    tp = _unwrap_optional(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        info = tp.model_fields.get(str(part))
        return info.annotation if info is not None else None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return tp
