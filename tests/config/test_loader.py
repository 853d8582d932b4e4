"""YAML loading: good files, faults with their path and line, ${VAR}, dump round-trip."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import jsonschema
import pytest

from campusgate.config.loader import (
    ConfigError,
    Problem,
    config_json_schema,
    dump_yaml,
    format_path,
    load_config_file,
    load_config_text,
    parse_entities_text,
)
from campusgate.config.model import Config, Entities
from campusgate.plugins.registry import plugin_classes

DOCS = Path(__file__).parents[2] / "docs" / "configuration.md"

FULL = """\
listeners:
  proxy: {address: 0.0.0.0:9080}
  admin: null
storage: postgresql://gate@127.0.0.1/gate
state: redis://127.0.0.1:6379/0
limits: {max_body_bytes: 1048576}
trusted_proxies: [10.0.0.0/8]
upstreams:
  - name: roster-pool
    algorithm: least-connections
    targets:
      - {target: 10.0.0.1:9000}
      - {target: 10.0.0.2:9000, weight: 50}
    healthchecks:
      active: {path: /health, interval: 2}
services:
  - name: roster
    url: https://roster-pool/v1
    timeouts: {read: 5}
    routes:
      - name: roster-api
        paths: [/roster, "/users/{id}", "~^/v[0-9]+/"]
        methods: [get, POST]
        headers: {X-Version: "2"}
        strip_path: false
        plugins: [{name: request-id, config: {header_name: X-Trace}}]
    tags: [team-a, "literal $${HOME}"]
  - name: echo
    upstream:
      targets: [{target: 127.0.0.1:7000}]
    routes: [{name: echo, hosts: ["*.example.edu"]}]
plugins:
  - name: request-id
"""


def _problems(text: str, env: dict[str, str] | None = None) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, source="gate.yaml", env=env or {})
    return [(p.line, p.path, p.message) for p in info.value.problems]


# ---------------------------------------------------------------- good files


def test_full_file_loads_with_every_section() -> None:
    config = load_config_text(FULL, env={})
    assert config.listeners.proxy.port == 9080
    assert config.listeners.admin is None
    assert config.state == "redis://127.0.0.1:6379/0"
    roster, echo = config.services
    assert (roster.protocol, roster.path, roster.timeouts.read) == ("https", "/v1", 5.0)
    route = roster.routes[0]
    assert route.methods == ["GET", "POST"]
    assert route.headers == {"X-Version": ["2"]}
    assert route.plugins[0].config["header_name"] == "X-Trace"
    assert roster.tags == ["team-a", "literal ${HOME}"]
    assert echo.upstream is not None and echo.upstream.name == "echo-upstream"
    assert config.upstreams[0].targets[1].weight == 50


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "~\n", "{}\n"])
def test_empty_documents_give_the_defaults(text: str) -> None:
    assert load_config_text(text) == Config()


def test_anchors_and_merge_keys_work_and_overrides_are_not_duplicates() -> None:
    text = """\
    services:
      - &svc {name: a, url: 'http://h:1', timeouts: {connect: 1, read: 120}}
      - <<: *svc
        name: b
        timeouts: {read: 30}
    """
    config = load_config_text(textwrap.dedent(text))
    assert [s.name for s in config.services] == ["a", "b"]
    assert config.services[1].url == "http://h:1"
    assert config.services[1].timeouts.read == 30


def test_load_config_file_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(FULL)
    assert load_config_file(path, env={}) == load_config_text(FULL, env={})


def test_unreadable_file_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config_file(missing)
    assert str(info.value) == f"{missing}: cannot read file: No such file or directory"
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config_file(binary)


# ---------------------------------------------------------------- faults


FAULTS = [
    pytest.param(
        "services:\n  - name: a\n    url: http://h:1\n    routes:\n      - name: r\n"
        "        pths: [/a]\n",
        [(6, "services[0].routes[0].pths", "unknown key 'pths'; did you mean 'paths'?")],
        id="unknown-key-with-suggestion",
    ),
    pytest.param(
        "listeners: {}\nzzz: 1\n",
        [
            (
                2,
                "zzz",
                "unknown key 'zzz'; expected one of: upstreams, services, plugins, "
                "consumers, consumer_groups, identity, ai, listeners, storage, state, "
                "secret_key_file, limits, trusted_proxies, observe",
            )
        ],
        id="unknown-top-level-key",
    ),
    pytest.param(
        "services:\n  - name: a\n    url: http://h:1\n    routes:\n      - name: r\n"
        "        paths:\n          - /ok\n          - nope\n",
        [
            (
                6,
                "services[0].routes[0].paths",
                "path 'nope' must start with '/' (or '~' for a regex)",
            )
        ],
        id="field-validator-points-at-the-field",
    ),
    pytest.param(
        "services:\n  - name: a\n    url: http://h:1\n    routes:\n      - name: r\n"
        "        headers: {X-A: [ok, [nested]]}\n",
        [(6, "services[0].routes[0].headers.X-A[1]", "input should be a valid string")],
        id="list-item-inside-a-dict",
    ),
    pytest.param(
        "services:\n  - name: a\n    routes: []\n",
        [(2, "services[0]", "a service needs exactly one of url or upstream")],
        id="model-validator-points-at-the-item",
    ),
    pytest.param(
        "services:\n  - url: http://h:1\n",
        [(2, "services[0].name", "required key is missing")],
        id="missing-key-points-at-its-parent",
    ),
    pytest.param(
        "upstreams:\n  - name: u\n    targets:\n      - {target: h:1}\n"
        "      - {target: h, weight: 2}\n",
        [(5, "upstreams[0].targets[1].target", "expected HOST:PORT, got 'h'")],
        id="second-list-item",
    ),
    pytest.param(
        "limits:\n  max_headers: lots\n",
        [
            (
                2,
                "limits.max_headers",
                "input should be a valid integer, unable to parse string as an integer",
            )
        ],
        id="wrong-type",
    ),
    pytest.param(
        "services:\n  - {name: a, url: 'http://h:1'}\n  - {name: a, url: 'http://h:2'}\n",
        [(3, "services[1].name", "duplicate service name 'a' (see services[0])")],
        id="duplicate-service-names",
    ),
    pytest.param(
        "services:\n  - name: a\n    url: http://h:1\n    routes: [{name: r, paths: [/a]}]\n"
        "  - name: b\n    url: http://h:1\n    routes:\n      - {name: r, paths: [/b]}\n"
        "upstreams:\n  - {name: u, targets: [{target: 'h:1'}]}\n"
        "  - {name: u, targets: [{target: 'h:2'}]}\n",
        [
            (
                8,
                "services[1].routes[0].name",
                "duplicate route name 'r' (see services[0].routes[0])",
            ),
            (11, "upstreams[1].name", "duplicate upstream name 'u' (see upstreams[0])"),
        ],
        id="duplicate-route-names-across-services-and-upstreams",
    ),
    pytest.param(
        "state: memory\nstorage: sqlite:///a.db\nstate: memory\n",
        [(3, "state", "duplicate key 'state' (first at line 1)")],
        id="duplicate-key",
    ),
    pytest.param(
        "services:\n  - name: a\n    url: http://h:1\n    plugins: [{name: nope}]\n",
        [
            (
                4,
                "services[0].plugins[0]",
                "unknown plugin 'nope'; known: " + ", ".join(sorted(plugin_classes())),
            )
        ],
        id="unknown-plugin",
    ),
    pytest.param(
        "services:\n  - name: a\n    url: [\n",
        [
            (
                4,
                "",
                "invalid YAML: while parsing a flow node, expected the node content, "
                "but found '<stream end>'",
            )
        ],
        id="yaml-syntax",
    ),
    pytest.param(
        "a: 1\n\tb: 2\n",
        [
            (
                2,
                "",
                "invalid YAML: while scanning for the next token, found character '\\t' "
                "that cannot start any token",
            )
        ],
        id="yaml-tab",
    ),
    pytest.param(
        "state: !!python/object/apply:os.system [echo]\n",
        [
            (
                1,
                "",
                "invalid YAML: could not determine a constructor for the tag "
                "'tag:yaml.org,2002:python/object/apply:os.system'",
            )
        ],
        id="unsafe-tag-refused",
    ),
    pytest.param(
        "- name: a\n", [(1, "", "the top level must be a mapping, got a list")], id="top-list"
    ),
    pytest.param(
        "just text\n", [(1, "", "the top level must be a mapping, got a str")], id="top-scalar"
    ),
    pytest.param(
        "state: memory\n---\nstate: memory\n",
        [
            (
                2,
                "",
                "invalid YAML: expected a single document in the stream, "
                "but found another document",
            )
        ],
        id="two-documents",
    ),
]


@pytest.mark.parametrize(("text", "expected"), FAULTS)
def test_faults_name_path_line_and_cause(
    text: str, expected: list[tuple[int | None, str, str]]
) -> None:
    assert _problems(text) == expected


def test_all_problems_are_reported_in_line_order() -> None:
    text = "services:\n  - name: a\n    url: http://h:1\n    bogus: 1\nlimits: {max_headers: 0}\n"
    got = _problems(text)
    assert [(line, path) for line, path, _ in got] == [
        (4, "services[0].bogus"),
        (5, "limits.max_headers"),
    ]


def test_error_string_is_one_problem_per_line() -> None:
    error = ConfigError(
        [Problem("state", "bad", 3), Problem("", "top", 1), Problem("x", "no line", None)],
        source="gate.yaml",
    )
    assert str(error).splitlines() == [
        "gate.yaml:3: state: bad",
        "gate.yaml:1: top",
        "gate.yaml: x: no line",
    ]


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (("services", 0, "routes", 1, "paths", 0), "services[0].routes[1].paths[0]"),
        (("headers", "X-Api-Key", 0), "headers.X-Api-Key[0]"),
        (("headers", "a.b"), 'headers["a.b"]'),
        ((), ""),
    ],
)
def test_format_path(loc: tuple[object, ...], path: str) -> None:
    assert format_path(loc) == path


# ---------------------------------------------------------------- ${VAR}

ENV_CASES = [
    ("${HOST}:8080", {"HOST": "10.1.1.1"}, "10.1.1.1:8080"),
    ("${HOST:-127.0.0.1}:8080", {}, "127.0.0.1:8080"),
    ("${HOST:-127.0.0.1}:8080", {"HOST": ""}, "127.0.0.1:8080"),
    ("${HOST:-127.0.0.1}:8080", {"HOST": "10.2.2.2"}, "10.2.2.2:8080"),
    ("${HOST}:${PORT:-81}", {"HOST": "h"}, "h:81"),
]


@pytest.mark.parametrize(("value", "env", "expected"), ENV_CASES)
def test_env_references_are_replaced(value: str, env: dict[str, str], expected: str) -> None:
    config = load_config_text(f"listeners: {{proxy: {{address: '{value}'}}}}\n", env=env)
    assert config.listeners.proxy.address == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$${HOME}", "${HOME}"),
        ("a$$${HOME}", "a$${HOME}"),
        ("$$ and $HOME", "$$ and $HOME"),
        ("$${HOME:-x} ${HOME}", "${HOME:-x} /home/x"),
    ],
)
def test_double_dollar_escapes_a_literal_reference(value: str, expected: str) -> None:
    text = f"services: [{{name: a, url: 'http://h:1', tags: ['{value}']}}]\n"
    config = load_config_text(text, env={"HOME": "/home/x"})
    assert config.services[0].tags == [expected]


def test_env_substitution_reaches_non_string_fields_and_plugin_configs() -> None:
    text = """\
    limits: {max_headers: "${MAXH}"}
    plugins: [{name: request-id, config: {header_name: "${HDR}"}}]
    """
    config = load_config_text(textwrap.dedent(text), env={"MAXH": "7", "HDR": "X-Corr"})
    assert config.limits.max_headers == 7
    assert config.plugins[0].config["header_name"] == "X-Corr"


def test_unset_variable_is_a_problem_at_its_path() -> None:
    text = "services:\n  - name: lms\n    url: http://h:1\n    tags: [ok, '${LMS_SECRET}']\n"
    assert _problems(text) == [
        (4, "services[0].tags[1]", "environment variable LMS_SECRET is not set")
    ]


def test_malformed_reference_is_a_problem() -> None:
    (problem,) = _problems("state: '${NOT VALID}'\n")
    assert problem[:2] == (1, "state")
    assert problem[2].startswith("invalid reference")
    (unterminated,) = _problems("state: 'redis://${HOST'\n")
    assert unterminated[:2] == (1, "state")


def test_secret_values_never_appear_in_messages() -> None:
    secret = "hunter2-very-secret"
    text = "services:\n  - name: a\n    url: 'http://u:${PASS}@h:99999'\n"
    with pytest.raises(ConfigError) as info:
        load_config_text(text, env={"PASS": secret})
    rendered = str(info.value)
    assert secret not in rendered
    assert "${PASS}" in rendered and "out of range" in rendered


def test_keys_are_not_substituted() -> None:
    text = "services: [{name: a, url: 'http://h:1', routes: [{name: r, headers: {'${H}': x}}]}]\n"
    config = load_config_text(text, env={})
    assert config.services[0].routes[0].headers == {"${H}": ["x"]}


# ---------------------------------------------------------------- entities for apply


def test_entities_ignore_bootstrap_keys_even_with_unset_variables() -> None:
    text = FULL.replace("postgresql://gate@127.0.0.1/gate", "'${DB_URL}'")
    text = text.replace("address: 0.0.0.0:9080", "address: bad")
    entities = parse_entities_text(text, env={})
    assert isinstance(entities, Entities)
    assert [s.name for s in entities.services] == ["roster", "echo"]
    assert entities == load_config_text(FULL, env={}).entities()


def test_entities_still_reject_unknown_keys() -> None:
    with pytest.raises(ConfigError) as info:
        parse_entities_text("storage: x\nservicez: []\n", source="apply.yaml")
    assert str(info.value) == (
        "apply.yaml:2: servicez: unknown key 'servicez'; did you mean 'services'?"
    )


# ---------------------------------------------------------------- dump


def test_dump_round_trips_a_full_config() -> None:
    config = load_config_text(FULL, env={})
    text = dump_yaml(config)
    assert load_config_text(text, env={}) == config
    entities = config.entities()
    assert parse_entities_text(dump_yaml(entities), env={}) == entities


def test_dump_is_readable_minimal_and_ordered() -> None:
    config = load_config_text(FULL, env={})
    text = dump_yaml(config)
    top_keys = re.findall(r"^(\w+):", text, flags=re.MULTILINE)
    assert top_keys == [
        "listeners",
        "storage",
        "state",
        "limits",
        "trusted_proxies",
        "upstreams",
        "services",
        "plugins",
    ]
    assert "max_headers" not in text  # a default
    assert "protocol" not in text and "echo-upstream" not in text  # derived
    assert "trust_incoming" not in text  # a plugin's default
    assert "paths: [/roster, '/users/{id}', '~^/v[0-9]+/']" in text
    assert "literal $${HOME}" in text  # stays literal when loaded again
    assert dump_yaml(Config()) == "{}\n"


def test_dump_escapes_values_that_look_like_references() -> None:
    config = load_config_text(
        "services: [{name: a, url: 'http://h:1', tags: ['$${X}', '$$${X}', '$$']}]\n"
    )
    assert config.services[0].tags == ["${X}", "$${X}", "$$"]
    assert load_config_text(dump_yaml(config), env={"X": "leak"}) == config


# ---------------------------------------------------------------- schema


def test_schema_is_a_valid_json_schema_that_accepts_good_files() -> None:
    schema = config_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {"services", "upstreams", "plugins", "listeners", "storage"} <= set(schema["properties"])
    validator = jsonschema.Draft202012Validator(schema)
    config = load_config_text(FULL, env={})
    validator.validate(config.model_dump(mode="json"))
    errors = list(validator.iter_errors({"services": [{"name": "a", "bogus": 1}]}))
    assert errors, "unknown keys must be rejected by the schema too"


# ---------------------------------------------------------------- docs examples


DOC_EXAMPLES = tuple(re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), flags=re.DOTALL))


def test_docs_have_examples() -> None:
    assert len(DOC_EXAMPLES) >= 3


@pytest.mark.parametrize("text", DOC_EXAMPLES)
def test_docs_yaml_examples_load(text: str) -> None:
    """Examples marked ``# error`` must fail; every other one must load."""
    env = {"LMS_SECRET": "s3cret", "ROSTER_HOST": "10.0.0.5"}
    if text.startswith("# error"):
        with pytest.raises(ConfigError):
            load_config_text(text, env=env)
    else:
        load_config_text(text, env=env)


def test_docs_error_example_prints_what_the_docs_show() -> None:
    doc = DOCS.read_text()
    match = re.search(r"```yaml\n(# error.*?)```\s*\ngives\s*\n\s*```\n(.*?)```", doc, re.DOTALL)
    assert match is not None
    with pytest.raises(ConfigError) as info:
        load_config_text(match.group(1), source="campusgate.yaml", env={})
    assert str(info.value) == match.group(2).strip()


def test_dump_round_trips_the_identity_provider_with_sealed_secrets() -> None:
    from campusgate.config.sealing import seal
    from campusgate.keyring import Keyring

    text = """\
identity:
  issuer: https://id.example.edu
  scopes: [{name: roster.read, description: Read rosters, claims: [school_id]}]
  clients:
    - client_id: lms
      client_secret: lms-secret-0123456789abcdef
      redirect_uris: [https://lms.example.edu/cb]
      scopes: [openid, roster.read]
    - {client_id: app, token_endpoint_auth_method: none, redirect_uris: ["edu.example.app:/cb"]}
"""
    entities = seal(parse_entities_text(text, env={}), Keyring(b"k" * 32))
    dumped = dump_yaml(entities)
    assert "lms-secret" not in dumped and "client_secret_hash" in dumped
    assert parse_entities_text(dumped, env={}) == entities
