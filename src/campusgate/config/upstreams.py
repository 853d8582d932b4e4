"""Upstreams: named sets of targets with balancing, health checks and TLS settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from campusgate.config.common import Name, Seconds, StrictModel, check_host_port, readable_file

__all__ = ["ActiveHealthCheck", "HealthChecks", "PassiveHealthCheck", "Target", "Upstream",
           "UpstreamTls"]



class Target(StrictModel):
    """One ``host:port`` behind an upstream, with a weight for balancing."""

    target: str
    weight: int = Field(default=100, ge=0, le=65535)

    _v = field_validator("target")(lambda cls, v: check_host_port(v))


class ActiveHealthCheck(StrictModel):
    """Periodic HTTP probe of each target."""

    enabled: bool = True
    path: str = "/"
    interval: Seconds = 5.0
    timeout: Seconds = 2.0
    healthy_threshold: int = Field(default=2, ge=1, le=100)
    unhealthy_threshold: int = Field(default=3, ge=1, le=100)
    healthy_statuses: list[int] = Field(
        default_factory=lambda: [200, 201, 202, 203, 204, 301, 302, 303, 304, 307, 308]
    )
    host: str | None = None


class PassiveHealthCheck(StrictModel):
    """Eject a target after consecutive failures, for a cool-down."""

    enabled: bool = True
    max_failures: int = Field(default=5, ge=1, le=1000)
    cooldown: Seconds = 10.0
    unhealthy_statuses: list[int] = Field(default_factory=lambda: [502, 503, 504])


class HealthChecks(StrictModel):
    active: ActiveHealthCheck | None = None
    passive: PassiveHealthCheck = Field(default_factory=PassiveHealthCheck)


class UpstreamTls(StrictModel):
    """TLS towards the targets (used when the service scheme is https)."""

    verify: bool = True
    ca_file: str | None = None
    sni: str | None = None

    _readable = field_validator("ca_file")(lambda cls, v: readable_file(v, "CA file"))


class Upstream(StrictModel):
    """A named set of targets with a balancing algorithm."""

    name: Name
    targets: list[Target] = Field(min_length=1)
    algorithm: Literal["round-robin", "least-connections", "consistent-hashing"] = (
        "round-robin"
    )
    hash_on: Literal["header", "cookie", "ip", "consumer"] = "ip"
    hash_key: str | None = None
    healthchecks: HealthChecks = Field(default_factory=HealthChecks)

    @model_validator(mode="after")
    def _hash_key_needed(self) -> Upstream:
        if (
            self.algorithm == "consistent-hashing"
            and self.hash_on in ("header", "cookie")
            and not self.hash_key
        ):
            raise ValueError(f"hash_on {self.hash_on!r} needs hash_key (the {self.hash_on} name)")
        return self
