"""The names of the people in the directory, for ``ai.redaction`` (kind ``name``):
an index made from the roster (``roster_users``: given, family and OneRoster 1.2's
preferred names) and the identity provider's users (``identity_users``), and the
loader that reads them in the background.

:class:`NameIndex` is pure: sets of strings, so a lookup costs the same for 50 people
or 50,000 (no regex of a hundred thousand alternatives).  A text is scanned for
capitalised words that begin a directory name (one regex whose first character class
is the names' initials), and only there are the following words read and looked up:

- ``Given Family`` (and ``Given Middle Family``, ``Given M. Family``): a pair of
  the directory, not any given name next to any family name;
- ``Family, Given``;
- ``Family`` alone only with ``family_alone`` (``min_length`` and ``ignore`` apply):
  a given name alone is never redacted -- May, Will, Grace are words too.

Matching is case-sensitive: names are compared as the directory spells them (a name
stored all in capitals or all in lower case is title-cased first), so ``grace`` or
``MAY`` in a text are left alone.  A possessive ``'s`` stays outside the redaction.

:class:`DirectoryNames` loads the index when a revision enables name redaction and
again every ``names.refresh`` seconds, never on the request path; until the first
load ends, names are simply not redacted.  A failed load is logged (never a name)
and tried again at the next refresh, keeping the index it had.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DirectoryNames", "NameIndex", "Person"]

log = logging.getLogger("campusgate.ai")

#: A (given, family) pair; either may be missing.
Person = tuple[str | None, str | None]

_TOKEN = r"[^\W\d_](?:[\w'\u2019-]*[^\W_])?"
_TOKENS = re.compile(_TOKEN)
#: A separator, then the next word: spaces (after an initial's dot) or a comma.
_NEXT = re.compile(r"(\.?[ \t\u00a0]+|[ \t\u00a0]*,[ \t\u00a0]*)(" + _TOKEN + ")")
#: Words read after a candidate: the longest indexed name, a middle name, a comma.
_MAX_WORDS = 8


def _words(name: str | None) -> list[str]:
    if not name:
        return []
    if name.isupper() or name.islower():
        name = name.title()
    return _TOKENS.findall(name)


def _bare(word: str) -> str:
    """The word without a possessive ``'s``."""
    return word[:-2] if word.endswith(("'s", "\u2019s")) and len(word) > 3 else word


@dataclass(frozen=True)
class _Word:
    text: str
    start: int
    end: int
    #: The separator before it ("" for the first word).
    sep: str


@dataclass(frozen=True, eq=False)
class NameIndex:
    """Full names (``"Given Family"``, words joined by one space), family names, and
    the words a name may begin with."""

    full: frozenset[str]
    families: frozenset[str]
    starts: frozenset[str]
    candidates: re.Pattern[str]
    people: int

    @classmethod
    def build(cls, people: Iterable[Person]) -> NameIndex:
        full: set[str] = set()
        families: set[str] = set()
        starts: set[str] = set()
        count = 0
        for given, family in people:
            given_words, family_words = _words(given), _words(family)
            if not given_words or not family_words:
                continue
            count += 1
            full.add(" ".join(given_words + family_words))
            families.add(" ".join(family_words))
            starts.update((given_words[0], family_words[0]))
        initials = sorted({w[0] for w in starts if w[0].isupper()})
        first = "[" + re.escape("".join(initials)) + "]"
        pattern = (first + r"(?<![\w'\u2019-]" + first + r")(?:[\w'\u2019-]*[^\W_])?"
                   if initials else r"(?!)")
        return cls(frozenset(full), frozenset(families), frozenset(starts),
                   re.compile(pattern), count)

    def spans(self, text: str, *, family_alone: bool = False, min_length: int = 3,
              ignore: frozenset[str] = frozenset()) -> Iterator[tuple[int, int]]:
        """The ``(start, end)`` of each name in ``text``, in order."""
        after = 0
        for found in self.candidates.finditer(text):
            if found.start() < after or _bare(found.group()) not in self.starts:
                continue
            words = [_Word(found.group(), found.start(), found.end(), "")]
            while len(words) < _MAX_WORDS:
                step = _NEXT.match(text, words[-1].end)
                if step is None or ("." in step.group(1) and len(words[-1].text) > 1):
                    break
                words.append(_Word(step.group(2), step.start(2), step.end(2),
                                   step.group(1)))
            end = (self._forward(words) or self._reversed(words)
                   or (self._family(words, min_length, ignore) if family_alone else None))
            if end is not None:
                after = end
                yield found.start(), end

    @staticmethod
    def _end(word: _Word) -> int:
        return word.start + len(_bare(word.text))

    def _forward(self, words: list[_Word]) -> int | None:
        """``Given [Middle] Family``: the end of the longest such name."""
        plain = [w.text for w in words]
        upto = next((i for i, w in enumerate(words) if "," in w.sep), len(words))
        for n in range(upto, 1, -1):
            last = _bare(plain[n - 1])
            if " ".join([*plain[:n - 1], last]) in self.full:
                return self._end(words[n - 1])
            if n >= 3 and plain[1][0].isupper() and " ".join(
                    [plain[0], *plain[2:n - 1], last]) in self.full:
                return self._end(words[n - 1])
        return None

    def _reversed(self, words: list[_Word]) -> int | None:
        """``Family, Given``."""
        comma = next((i for i, w in enumerate(words) if "," in w.sep), None)
        if comma is None:
            return None
        family = [w.text for w in words[:comma]]
        given = words[comma:]
        for n in range(len(given), 0, -1):
            names = [w.text for w in given[:n - 1]] + [_bare(given[n - 1].text)]
            if " ".join(names + family) in self.full:
                return self._end(given[n - 1])
        return None

    def _family(self, words: list[_Word], min_length: int,
                ignore: frozenset[str]) -> int | None:
        upto = next((i for i, w in enumerate(words) if "," in w.sep or "." in w.sep),
                    len(words))
        for n in range(upto, 0, -1):
            name = " ".join([w.text for w in words[:n - 1]] + [_bare(words[n - 1].text)])
            if len(name) >= min_length and name not in ignore and name in self.families:
                return self._end(words[n - 1])
        return None


# ---------------------------------------------------------------- loading

_PREFERRED_GIVEN = ("preferredGivenName", "preferredFirstName")
_PREFERRED_FAMILY = ("preferredFamilyName", "preferredLastName")


def _roster_people(rows: Iterable[Any]) -> Iterator[Person]:
    """A roster row's names: given/family and the preferred ones of OneRoster 1.2."""
    for given, family, extra in rows:
        yield given, family
        if not extra or "preferred" not in extra:
            continue
        try:
            more = json.loads(extra)
        except ValueError:
            continue
        if not isinstance(more, dict):
            continue
        pgiven = next((more[k] for k in _PREFERRED_GIVEN if more.get(k)), None)
        pfamily = next((more[k] for k in _PREFERRED_FAMILY if more.get(k)), None)
        for pair in ((pgiven, family), (given, pfamily), (pgiven, pfamily)):
            if all(isinstance(part, str) for part in pair) and pair != (given, family):
                yield pair


def _account_people(rows: Iterable[Any]) -> Iterator[Person]:
    """An identity user's names: given/family, else ``name`` cut at its last word."""
    for given, family, name in rows:
        if given and family:
            yield given, family
        elif name and " " in name.strip():
            first, _, last = name.strip().rpartition(" ")
            yield first, last


def index_of(roster: Sequence[Any], accounts: Sequence[Any]) -> NameIndex:
    """The index of the rows read from the store (CPU work: run it off the loop)."""
    return NameIndex.build([*_roster_people(roster), *_account_people(accounts)])


class DirectoryNames:
    """The current :class:`NameIndex` of the store at ``storage`` (None until the
    first load), kept fresh by a background task while name redaction is on."""

    def __init__(self, storage: str) -> None:
        self.storage = storage
        self.index: NameIndex | None = None
        self.refresh = 600.0
        self._task: asyncio.Task[None] | None = None

    def start(self, refresh: float) -> None:
        """Load now and every ``refresh`` seconds (already running: the new period
        applies after the current wait)."""
        self.refresh = refresh
        if self._task is None or self._task.done():
            log.info("AI redaction: loading the directory's names; names are not "
                     "redacted until it is done")
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        """Stop refreshing and forget the names (name redaction was turned off)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.index = None

    async def load(self) -> NameIndex:
        """Read the names once (roster and identity users) and index them."""
        from sqlalchemy import select

        from campusgate.store.dsn import async_url
        from campusgate.store.engine import create_engine
        from campusgate.store.tables import identity_users, roster_users

        engine = create_engine(async_url(self.storage))  # for one load: held no longer
        try:
            async with engine.connect() as conn:
                roster = (await conn.execute(select(
                    roster_users.c.given_name, roster_users.c.family_name,
                    roster_users.c.extra))).all()
                accounts = (await conn.execute(select(
                    identity_users.c.given_name, identity_users.c.family_name,
                    identity_users.c.name))).all()
        finally:
            await engine.dispose()
        return await asyncio.to_thread(index_of, roster, accounts)

    async def _run(self) -> None:
        while True:
            try:
                self.index = await self.load()
                log.info("AI redaction: %d people's names loaded from the directory",
                         self.index.people)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a background task's edge: log, try again later
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                log.error("AI redaction: the directory's names cannot be loaded (%s); "
                          "trying again in %.0f s", reason, self.refresh)
            await asyncio.sleep(self.refresh)
