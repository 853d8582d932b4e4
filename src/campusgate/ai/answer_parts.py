"""The pieces of a provider answer that are not its protocol: its headers, decoded only
when looked at (:class:`AnswerHeaders`), and the read timeouts of every answer a
worker waits for, on one timer (:class:`ReadWatch`).  Used by
:mod:`campusgate.ai.client`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from campusgate.proxy.context import HeaderList

if TYPE_CHECKING:
    from campusgate.ai.client import ProviderAnswer

__all__ = ["AnswerHeaders", "ReadWatch"]


class AnswerHeaders(Mapping[str, str]):
    """An answer's headers as text, decoded the first time they are looked at: a
    successful call whose translator reads none of them (OpenAI's) decodes none."""

    __slots__ = ("_decoded", "_raw")

    def __init__(self, raw: HeaderList) -> None:
        self._raw = raw
        self._decoded: dict[str, str] | None = None

    def _text(self) -> dict[str, str]:
        decoded = self._decoded
        if decoded is None:
            decoded = self._decoded = {n.decode("latin-1"): v.decode("latin-1")
                                       for n, v in self._raw}
        return decoded

    def __getitem__(self, name: str) -> str:
        return self._text()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._text())

    def __len__(self) -> int:
        return len(self._text())

    def __repr__(self) -> str:
        return f"AnswerHeaders({self._text()!r})"


class ReadWatch:
    """The read timeouts of one loop's answers, on one timer.

    An answer waiting for the provider is registered with its deadline; the timer is
    due at the nearest deadline and re-armed, when it fires, for the nearest one
    left.  A later deadline leaves it as it is: under steady traffic it fires once
    per read timeout, not once per call."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._waiting: dict[ProviderAnswer, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0

    def watch(self, answer: ProviderAnswer, due: float) -> None:
        self._waiting[answer] = due
        timer = self._timer
        if timer is not None:
            if self._due <= due:
                return
            timer.cancel()
        self._due = due
        self._timer = self.loop.call_at(due, self._fire)

    def unwatch(self, answer: ProviderAnswer) -> None:
        self._waiting.pop(answer, None)

    def _fire(self) -> None:
        self._timer = None
        now = self.loop.time()
        expired = [answer for answer, due in self._waiting.items() if due <= now]
        for answer in expired:
            del self._waiting[answer]
            answer.expire()
        if self._waiting:
            self._due = min(self._waiting.values())
            self._timer = self.loop.call_at(self._due, self._fire)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._waiting.clear()
