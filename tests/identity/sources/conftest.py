"""Fixtures of the login-source tests: a ClassLink stand-in, and one real
``campusgate serve`` (per module) whose identity provider has ClassLink and a generic
OpenID provider (both the stand-in) as login sources."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from classlink_standin import CLIENT_SECRET, ClassLinkStandIn
from identity_harness import ServedGateway, serve_gateway
from sources_harness import identity_yaml


@pytest.fixture(scope="module")
def standin_server() -> Iterator[ClassLinkStandIn]:
    server = ClassLinkStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def standin(standin_server: ClassLinkStandIn) -> ClassLinkStandIn:
    standin_server.reset()
    return standin_server


@pytest.fixture(scope="module")
def gateway(standin_server: ClassLinkStandIn,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    served = serve_gateway(tmp_path_factory.mktemp("sources-gateway"),
                           identity_yaml(standin_server.url),
                           env={"CLASSLINK_SECRET": CLIENT_SECRET})
    yield served
    served.stop()
