"""The YAML examples of docs/observability.md "Sinks" load, and each builds its sink
the way the worker does (``campusgate.observe.sinks.<type>.build``)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from campusgate.config.loader import load_config_text
from campusgate.observe.sinks.base import SinkEnv

PAGE = (Path(__file__).resolve().parents[3] / "docs" / "observability.md").read_text()
SECTION = PAGE.split("\n## Sinks\n", 1)[1].split("\n## ", 1)[0]
ENV = {"COLLECTOR_TOKEN": "t0ken", "OTLP_KEY": "k3y"}


async def test_every_sink_example_loads_and_builds() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", SECTION, flags=re.S)
    built = []
    for block in blocks:
        config = load_config_text(block, "docs/observability.md", env=ENV)
        for spec in config.observe.sinks:
            module = importlib.import_module(f"campusgate.observe.sinks.{spec.type}")
            if spec.type == "store":
                built.append("store")
                continue
            sink = module.build(spec, SinkEnv("sqlite:///unused.db", "doc:1:0"))
            built.append(sink.name.split(":", 1)[0])
            await sink.close()
    assert built == ["store", "file", "http", "syslog", "otlp"]
    http = load_config_text(blocks[1], "docs", env=ENV).observe.sinks[0]
    assert http.headers == {"Authorization": "Bearer t0ken"}  # type: ignore[union-attr]
