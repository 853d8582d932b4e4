"""The TLS client context of a network sink (syslog ``tls://``, https receivers of the
http and otlp sinks): the receiver's certificate and host name always verified,
against the configured CA or the system's, and an optional client certificate."""

from __future__ import annotations

import ssl

from campusgate.config.observe_sinks import ClientTls

__all__ = ["client_context"]


def client_context(tls: ClientTls | None) -> ssl.SSLContext:
    """A verifying client context for ``tls`` (the system's CAs when None)."""
    if tls is None:
        return ssl.create_default_context()
    ctx = ssl.create_default_context(cafile=tls.ca_file)
    if tls.cert_file is not None:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    return ctx
