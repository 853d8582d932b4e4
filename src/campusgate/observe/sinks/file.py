"""The file sink: JSON lines (one compact object per record, with
:meth:`AccessRecord.as_dict`'s keys), rotated by size and by age.

Decisions (docs/observability.md, "Sinks"):

- **One file for every worker.**  Each batch is encoded into one buffer and appended
  (``O_APPEND``) under an exclusive ``flock`` of the file: batches of several
  workers never interleave, lines stay whole and ``max_bytes`` holds.  (On NFS,
  ``flock`` is emulated and slow: give each node its own path there.)
- **Rotation** renames ``access.jsonl`` to ``access.jsonl.1`` (the older ones move
  up to ``.keep``; the oldest goes), then a new file is opened.  It happens before a
  batch would take the file past ``max_bytes`` (a file never holds less than one
  batch), or once the file's first record is ``max_age`` old (read back from its
  first line on opening, so a restart does not reset the age).  A worker holds
  ``flock`` on the file while it checks the size and appends a batch (and rotates,
  when due); the others then find that the path names another file (inode) and
  reopen it.  An outside ``logrotate`` that moves the file is noticed the same way
  (no ``copytruncate`` needed); so is a removed file or directory: both are created
  again.  Paths that are not regular files
  (``/dev/stdout``, a FIFO) are written and never rotated.
- **Durability**: each batch reaches the kernel when ``write`` returns (a crashed
  process loses nothing written); ``fsync: true`` adds ``fdatasync`` per batch, for
  power loss.  A full disk or any ``OSError`` fails the batch (the writer counts it;
  its head may already be in the file, so one line may be cut).
- The encoding and every system call run in a worker thread (``asyncio.to_thread``):
  the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import stat
import time
from collections.abc import Callable, Sequence

from campusgate.config.observe_sinks import FileSink
from campusgate.observe.record import AccessRecord
from campusgate.observe.sinks._encode import json_lines
from campusgate.observe.sinks.base import Sink, SinkEnv

__all__ = ["JsonLinesFile", "build"]

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
_HEAD = 65536  # bytes read back to find the first record's time


def _first_time(path: str, fallback: float) -> float:
    """The ``time`` of the first record of the file at ``path``; ``fallback`` for an
    empty, unreadable or non-regular file."""
    try:
        with open(path, "rb") as file:
            head = file.read(_HEAD) if stat.S_ISREG(os.fstat(file.fileno()).st_mode) else b""
    except OSError:
        return fallback
    line, newline, _ = head.partition(b"\n")
    if not newline:
        return fallback
    try:
        value = json.loads(line).get("time")
    except (ValueError, AttributeError):
        return fallback
    return float(value) if isinstance(value, int | float) else fallback


class JsonLinesFile:
    """One sink's handle on its file; used from one thread at a time."""

    def __init__(self, spec: FileSink, *, clock: Callable[[], float] = time.time) -> None:
        self.name = f"file:{spec.path}"
        self.path = os.path.abspath(spec.path)
        self.spec = spec
        self._clock = clock
        self._fd = -1
        self._regular = False
        self._started = 0.0  # the current file's first record time

    # ------------------------------------------------------------------ Sink
    async def write(self, batch: Sequence[AccessRecord]) -> None:
        if batch:
            await asyncio.to_thread(self.write_records, batch)

    async def close(self) -> None:
        self._close()

    # --------------------------------------------------------------- in thread
    def write_records(self, batch: Sequence[AccessRecord]) -> None:
        self.write_now(json_lines(batch))

    def write_now(self, data: bytes) -> None:
        """Append ``data`` (whole lines), rotating first when it is due."""
        fd = self._locked()
        try:
            while self._regular and self._due(fd, len(data)):
                self._shift()
                fcntl.flock(fd, fcntl.LOCK_UN)
                fd = -1
                fd = self._locked()  # the new file, which another may have written
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            if fd >= 0 and self._regular:
                fcntl.flock(fd, fcntl.LOCK_UN)
        if self.spec.fsync:
            os.fdatasync(fd)

    def _due(self, fd: int, adding: int) -> bool:
        size = os.fstat(fd).st_size
        return size > 0 and (size + adding > self.spec.max_bytes
                             or self._clock() - self._started >= self.spec.max_age)

    def _at_path(self, fd: int) -> bool:
        try:
            here = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (here.st_ino, here.st_dev) == (mine.st_ino, mine.st_dev)

    def _locked(self) -> int:
        """The descriptor of the file now at ``path``, locked (a regular file), after
        reopening it if another worker rotated it, or it was moved or removed."""
        while True:
            fd = self._fd
            if fd < 0 or not self._at_path(fd):
                self._close()
                fd = self._open()
            if not self._regular:
                return fd
            fcntl.flock(fd, fcntl.LOCK_EX)
            if self._at_path(fd):
                return fd
            fcntl.flock(fd, fcntl.LOCK_UN)  # rotated while this one waited

    def _open(self) -> int:
        try:
            fd = os.open(self.path, _FLAGS, 0o640)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(self.path), mode=0o750, exist_ok=True)
            fd = os.open(self.path, _FLAGS, 0o640)
        self._fd = fd
        self._regular = stat.S_ISREG(os.fstat(fd).st_mode)
        self._started = _first_time(self.path, self._clock())
        return fd

    def _shift(self) -> None:
        """``path`` -> ``path.1`` -> ... -> ``path.keep``; older ones removed."""
        path, keep = self.path, self.spec.keep
        extra = keep + 1
        while os.path.exists(f"{path}.{extra}"):  # left by a larger ``keep`` before
            os.unlink(f"{path}.{extra}")
            extra += 1
        if keep == 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return
        for n in range(keep - 1, 0, -1):
            if os.path.exists(f"{path}.{n}"):
                os.replace(f"{path}.{n}", f"{path}.{n + 1}")
        with contextlib.suppress(FileNotFoundError):  # removed meanwhile: nothing to keep
            os.replace(path, f"{path}.1")

    def _close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


def build(spec: FileSink, env: SinkEnv) -> Sink:
    return JsonLinesFile(spec)
