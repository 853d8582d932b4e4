"""What can go wrong while signing in through a login source, as data.

A :class:`SourceError` names the source, the step (``discovery``, ``token``,
``id_token``, ``userinfo``, ``account``) and the reason -- for the operator's log
line -- and what to tell the person: a title, a sentence, an HTTP status.  It renders
itself (:meth:`SourceError.response`): one log line, one error page, never a token,
secret or stack trace.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.responses import Response

from campusgate.identity.context import IdentityContext
from campusgate.identity.pages import render

__all__ = ["SourceError", "account_refused", "not_answering", "untrusted"]

log = logging.getLogger("campusgate.identity.sources")


@dataclass
class SourceError(Exception):
    """A sign-in through ``source`` failed at ``step`` because of ``reason``."""

    source: str
    step: str
    #: For the operator (logged): what happened, never a secret or token.
    reason: str
    #: For the person (shown).
    title: str
    message: str
    status: int = 502

    def __str__(self) -> str:
        return f"login source {self.source!r}, step {self.step}: {self.reason}"

    def response(self, ctx: IdentityContext, retry: str | None = None) -> Response:
        """The person's page (with a link to ``retry`` the sign-in, if given); the
        operator's log line."""
        log.warning("%s", self)
        headers = {"Retry-After": "60"} if self.status == 503 else None
        link = {"href": retry, "text": "Back to sign-in"} if retry else None
        return render.page(ctx, "error.html", {"title": self.title, "message": self.message,
                                               "link": link},
                           status=self.status, headers=headers)


def not_answering(source: str, label: str, step: str, reason: str) -> SourceError:
    """The source is down, slow or rate limiting us (after the retries)."""
    return SourceError(source, step, reason, f"{label} is not answering",
                       f"{label} is not answering right now. Please try again in a "
                       "minute.", status=503)


def untrusted(source: str, label: str, step: str, reason: str) -> SourceError:
    """The source answered something campusgate cannot accept (a bad ID token...)."""
    return SourceError(source, step, reason, f"Sign-in with {label} failed",
                       f"The answer from {label} could not be verified, so you were not "
                       "signed in. Please try again; if it keeps happening, tell your "
                       "school's IT team.")


def account_refused(source: str, label: str, reason: str, message: str) -> SourceError:
    """The person signed in at the source but may not have an account here."""
    return SourceError(source, "account", reason, "You cannot sign in here",
                       message, status=403)
