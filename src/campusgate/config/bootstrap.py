"""Bootstrap settings read once by ``campusgate serve``: listeners and limits."""

from __future__ import annotations

from pydantic import Field, field_validator

from campusgate.config.common import Seconds, StrictModel, check_host_port

__all__ = ["Limits", "Listener", "Listeners", "TlsListener"]



class TlsListener(StrictModel):
    cert_file: str
    key_file: str


class Listener(StrictModel):
    address: str
    tls: TlsListener | None = None

    _v = field_validator("address")(lambda cls, v: check_host_port(v))

    @property
    def host(self) -> str:
        return self.address.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])


class Listeners(StrictModel):
    proxy: Listener = Field(default_factory=lambda: Listener(address="0.0.0.0:8080"))
    admin: Listener | None = Field(default_factory=lambda: Listener(address="127.0.0.1:8081"))


class Limits(StrictModel):
    """Client-side limits and timeouts of the proxy listener."""

    max_header_bytes: int = Field(default=32768, ge=1024)
    max_headers: int = Field(default=100, ge=1)
    max_url_bytes: int = Field(default=8192, ge=256)
    max_body_bytes: int = Field(default=100 * 1024 * 1024, ge=0)
    header_timeout: Seconds = 10.0
    body_timeout: Seconds = 60.0
    keepalive_timeout: Seconds = 75.0
    #: How long a client may leave a response unread (its socket full) before the
    #: gateway gives up on it and frees the upstream connection.
    send_timeout: Seconds = 60.0
    max_connections: int = Field(default=10000, ge=1)
    shutdown_timeout: Seconds = 30.0
