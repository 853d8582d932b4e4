"""HTTP Basic client authentication as RFC 6749 section 2.3.1 has it.

The client id and secret are each form-encoded before they are joined with ``:`` and
base64-encoded, so a secret holding ``:``, ``%`` or non-ASCII characters arrives
intact.  Each is percent-encoded with nothing left safe (a space as ``%20``, not
``+``): that reads back the same whether the server decodes with ``unquote`` (as
Authlib does) or as a form (``unquote_plus``).  Used wherever campusgate is the
client: the ``sso`` plugin, the login sources, and the ClassLink sandbox's rewriting of
a secret posted in the form.
"""

from __future__ import annotations

import base64
from urllib.parse import quote

__all__ = ["basic_authorization"]


def basic_authorization(client_id: str, client_secret: str) -> str:
    """The ``Authorization`` header value: ``Basic <base64(id:secret)>``."""
    pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
