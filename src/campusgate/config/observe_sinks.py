"""The sinks of access records (``observe.sinks``): one model per ``type``.

Each model is read by its module ``campusgate.observe.sinks.<type>`` (``build``);
docs/observability.md ("Sinks") shows one example of each.
"""

from __future__ import annotations

import re
import ssl
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from campusgate.config.common import DURATION_TEXT, Seconds, StrictModel, readable_file

__all__ = ["SYSLOG_FACILITIES", "ClientTls", "DeliverySettings", "FileSink", "HttpSink",
           "OtlpSink", "SinkSpec", "StoreSink", "SyslogSink", "client_context",
           "https_for_tls"]


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} must be an http(s) URL")
    return value


class ClientTls(StrictModel):
    """TLS towards a sink's receiver.  The receiver's certificate is always verified,
    with its host name: against ``ca_file`` (PEM) when given, else the system's CAs.
    ``cert_file`` and ``key_file`` (PEM, together) present a client certificate, for
    receivers that require mutual TLS."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    _files = field_validator("ca_file", "cert_file", "key_file")(
        lambda cls, v: readable_file(v, "TLS file"))

    @model_validator(mode="after")
    def _usable(self) -> ClientTls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        try:  # PEM that does not parse, a key that is not the certificate's
            self.context()
        except ssl.SSLError as exc:
            raise ValueError(f"unusable TLS files: {exc}") from None
        return self

    def context(self) -> ssl.SSLContext:
        """The verifying client context these settings make."""
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file is not None:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def client_context(tls: ClientTls | None) -> ssl.SSLContext | None:
    """The context of a receiver's ``tls`` settings (None: the client's default, the
    system's CAs)."""
    return None if tls is None else tls.context()


def https_for_tls(tls: ClientTls | None, url: str) -> None:
    """``tls`` settings only make sense towards an ``https://`` receiver."""
    if tls is not None and not url.startswith("https://"):
        raise ValueError(f"tls settings need an https:// url, not {url!r}")



class StoreSink(StrictModel):
    """The configured storage (SQLite/PostgreSQL): log search and CSV export read it."""

    type: Literal["store"] = "store"


class FileSink(StrictModel):
    """JSON lines, rotated by size and by age, ``keep`` old files kept
    (``access.jsonl.1`` is the newest).  Every worker appends to the same file."""

    type: Literal["file"]
    path: str = Field(min_length=1)
    #: A file is rotated before a batch would take it past this size.
    max_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    #: A file is rotated once its first record is this old: ``1h``, ``1d`` or seconds.
    max_age: Annotated[float, DURATION_TEXT, Field(gt=0)] = 86400.0
    keep: int = Field(default=10, ge=0, le=1000)
    #: ``fdatasync`` after every batch: records survive a power loss, not only a crash.
    fsync: bool = False


class DeliverySettings(StrictModel):
    """How a batch is POSTed: timeouts, retries with backoff, compression."""

    headers: dict[str, str] = Field(default_factory=dict)
    #: Seconds for one attempt (connect, send and answer).
    timeout: Seconds = 10.0
    #: Further attempts after a connection error, a 5xx or a 429; then the batch is
    #: dropped (and counted by the writer).
    retries: int = Field(default=3, ge=0, le=10)
    #: The first wait between attempts, doubled each time (with jitter).
    retry_backoff: Seconds = 0.5
    #: No wait is longer, whatever a ``Retry-After`` asks.
    max_retry_wait: Seconds = 30.0
    #: Bodies of at least this many bytes are gzip-compressed; 0 = always, null = never.
    gzip_above: int | None = Field(default=64 * 1024, ge=0)
    #: A private CA or a client certificate for an ``https://`` receiver.
    tls: ClientTls | None = None


class HttpSink(DeliverySettings):
    """Batches POSTed as a JSON array (or NDJSON) to a collector."""

    type: Literal["http"]
    url: str
    format: Literal["json", "ndjson"] = "json"

    _url = field_validator("url")(lambda cls, v: _http_url(v))

    @model_validator(mode="after")
    def _tls_needs_https(self) -> HttpSink:
        https_for_tls(self.tls, self.url)
        return self


#: RFC 5424 section 6.2.1 facility names (``local0`` = 16).
SYSLOG_FACILITIES: dict[str, int] = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
    "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "audit": 13,
    "alert": 14, "clock": 15, **{f"local{n}": 16 + n for n in range(8)},
}

_SYSLOG_ADDRESS = re.compile(r"(udp|tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(\d{1,5})")


def _facility(value: object) -> object:
    if isinstance(value, str) and not value.isdigit():
        if value not in SYSLOG_FACILITIES:
            raise ValueError(f"unknown facility {value!r}: one of "
                             f"{', '.join(SYSLOG_FACILITIES)} or 0..23")
        return SYSLOG_FACILITIES[value]
    return value


def _printable(value: str) -> str:
    """RFC 5424 header fields are PRINTUSASCII (33..126): no spaces."""
    if not all("!" <= ch <= "~" for ch in value):
        raise ValueError(f"{value!r} must be printable ASCII without spaces")
    return value


class SyslogSink(StrictModel):
    """RFC 5424 messages over UDP, TCP (octet-counted framing, RFC 6587), TLS (RFC
    5425, the same framing) or a local Unix datagram socket."""

    type: Literal["syslog"]
    #: ``udp://host:514``, ``tcp://host:601``, ``tls://host:6514`` or ``unix:///dev/log``.
    address: str
    #: For ``tls://``: a private CA, a client certificate (the system's CAs otherwise).
    tls: ClientTls | None = None
    #: 0..23 or a name (``local0``, ``daemon`` ...).
    facility: Annotated[int, BeforeValidator(_facility), Field(ge=0, le=23)] = 16
    app_name: str = Field(default="campusgate", min_length=1, max_length=48)
    #: The HOSTNAME field; by default this machine's name.
    hostname: str | None = Field(default=None, min_length=1, max_length=255)
    #: UDP and Unix datagrams longer than this are cut (RFC 5426: 2048 is safe).
    max_datagram: int = Field(default=2048, ge=480, le=65000)
    #: Seconds to connect and to send one batch (TCP).
    timeout: Seconds = 10.0

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if value.startswith("unix://"):
            if not value.startswith("unix:///") or len(value) == len("unix:///"):
                raise ValueError(f"{value!r}: expected unix:///absolute/path")
            return value
        match = _SYSLOG_ADDRESS.fullmatch(value)
        if match is None or not 0 < int(match[3]) < 65536:
            raise ValueError(f"{value!r}: expected udp://HOST:PORT, tcp://HOST:PORT, "
                             "tls://HOST:PORT or unix:///PATH")
        return value

    @model_validator(mode="after")
    def _tls_needs_tls(self) -> SyslogSink:
        if self.tls is not None and not self.address.startswith("tls://"):
            raise ValueError(f"tls settings need a tls:// address, not {self.address!r}")
        return self

    _app = field_validator("app_name")(lambda cls, v: _printable(v))
    _host = field_validator("hostname")(lambda cls, v: v if v is None else _printable(v))


class OtlpSink(DeliverySettings):
    """OpenTelemetry over OTLP/HTTP (JSON encoding): records as log records and as
    the gateway's spans."""

    type: Literal["otlp"]
    #: The collector's base URL; ``/v1/logs`` and ``/v1/traces`` are appended.
    endpoint: str
    logs: bool = True
    traces: bool = True
    service_name: str = Field(default="campusgate", min_length=1)

    _url = field_validator("endpoint")(lambda cls, v: _http_url(v).rstrip("/"))

    @model_validator(mode="after")
    def _tls_needs_https(self) -> OtlpSink:
        https_for_tls(self.tls, self.endpoint)
        return self


SinkSpec = Annotated[StoreSink | FileSink | HttpSink | SyslogSink | OtlpSink,
                     Field(discriminator="type")]
