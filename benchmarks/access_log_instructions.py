"""Instructions per access record, counted by callgrind: a meter that repeats exactly.

    .venv/bin/python benchmarks/access_log_instructions.py [--records 20000]

Throughput runs on a shared 2-core machine spread by about +-5%, too much to see a
change of a few per cent in the logging pipeline; instruction counts repeat from run
to run whatever else the machine is doing.  Two counts, each the difference of two
runs under ``valgrind --tool=callgrind`` that differ only in the work measured (so
start-up and set-up cancel out):

- ``worker``: the worker's side of a record, over ``--records`` contexts shaped like
  the ``access-log`` scenario's (``access_log_profile.contexts``), the queue taken
  as frames every 4,000 rows as the shipper does: ``tuples`` (the pure-Python
  path: :meth:`Capture.recorder` puts the row in a ``RowQueue``, frames are
  marshalled, the rows then freed) and ``packed`` (the C row packer:
  ``PackedQueue``), when it is built;
- ``writer``: the log-writer process's whole loop (``access_log_profile.py
  --writer-of``: frames decoded, records finished, the store sink on SQLite, the
  roll-ups and metrics stages), ``--records`` more records against 5,000, for
  frames of either kind.

Instructions are not time (cache misses cost time and no instruction), so a change
that the count shows must still be confirmed by ``benchmarks/run.py access-log``.
Needs valgrind (Debian's ``valgrind``).  docs/observability.md, "Counted in
instructions", has the figures and what they mean.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import access_log_profile as profile  # noqa: E402
from campusgate.observe._ship import RowQueue, ShipQueue  # noqa: E402
from campusgate.observe._speedups import speedups  # noqa: E402
from campusgate.observe.capture import Capture  # noqa: E402
from campusgate.observe.packed import PackedQueue  # noqa: E402

#: The worker's two paths: tuples and marshal, or the C row packer.
KINDS = ("tuples", "packed")
#: The smaller run of each pair (its set-up and start-up cancel out).
BASE = 5000


def _summary(out: Path) -> int:
    match = re.search(r"^summary: (\d+)", out.read_text(errors="replace"), re.M)
    if match is None:
        raise RuntimeError(f"no callgrind summary in {out}")
    return int(match.group(1))


def _count(argv: list[str], out: Path) -> int:
    """Instructions callgrind counted running ``argv`` (threads included), with one
    hash seed: with a random one the count moves by a few hundred a record from run
    to run (the order of sets and dicts of strings)."""
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONHASHSEED": "0"})
    return _summary(out)


def _queue(kind: str) -> tuple[ShipQueue, Callable[[Any], None]]:
    """A shipping worker's queue of ``kind`` (``tuples``, ``packed``) and its recorder."""
    capture = Capture("proxy")
    if kind == "packed":
        module = speedups()
        assert module is not None, "the row packer is not built"
        packed = PackedQueue(1_000_000, 5000, capture, module)
        return packed, packed.record
    rows = RowQueue(1_000_000, 5000)
    return rows, capture.recorder(rows)


def _row_child(count: int, kind: str) -> None:
    """The measured process of the worker's side: contexts made, then (unless
    ``skip``) each one recorded, the queue taken as frames every 4,000 rows."""
    contexts = profile.contexts(count, 30_000.0)
    if kind != "skip":
        queue, record = _queue(kind)
        for i, ctx in enumerate(contexts):
            record(ctx)
            if i % 4000 == 3999:
                queue.take_frame(4000)


def row_instructions(count: int, work: Path, kind: str) -> float:
    me = [sys.executable, __file__, "--records", str(count), "--row-child"]
    without = _count([*me, "skip"], work / "row-skip.out")
    with_rows = _count([*me, kind], work / f"row-{kind}.out")
    return (with_rows - without) / count


def _frames(count: int, path: Path, storage: Path, kind: str) -> None:
    """Frames of ``count`` rows as the shipper writes them, and a migrated store."""
    queue, record = _queue(kind)
    frames = []
    for i, ctx in enumerate(profile.contexts(count, 30_000.0)):
        record(ctx)
        if i % BASE == BASE - 1:
            frames.append(queue.take_frame(BASE)[0])
    if len(queue):
        frames.append(queue.take_frame(BASE)[0])
    path.write_bytes(b"".join(frames))
    storage.mkdir()
    asyncio.run(profile._fresh_storage("sqlite", storage))


def writer_instructions(count: int, work: Path, kind: str) -> float:
    counts = []
    for n in (BASE, BASE + count):
        frames, storage = work / f"frames-{kind}-{n}", work / f"db-{kind}-{n}"
        _frames(n, frames, storage, kind)
        counts.append(_count([sys.executable, str(HERE / "access_log_profile.py"),
                              "--writer-of", str(frames), "--storage",
                              f"sqlite:///{storage}/profile.db"],
                              work / f"writer-{kind}-{n}.out"))
    return (counts[1] - counts[0]) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--row-child", choices=("skip", *KINDS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row_child:
        _row_child(args.records, args.row_child)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind: apt-get install -y valgrind")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"instructions per record (callgrind; {args.records:,} records)")
        for kind in KINDS if speedups() is not None else KINDS[:1]:
            worker = row_instructions(args.records, work, kind)
            writer = writer_instructions(args.records, work, kind)
            print(f"{kind:<8} worker {worker:>10,.0f}   writer {writer:>10,.0f}")


if __name__ == "__main__":
    main()
