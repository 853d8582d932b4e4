"""Instructions per access record, counted by callgrind: a meter that repeats exactly.

    .venv/bin/python benchmarks/access_log_instructions.py [--records 20000]

Throughput runs on a shared 2-core machine spread by about +-5%, too much to see a
change of a few per cent in the logging pipeline; instruction counts repeat from run
to run whatever else the machine is doing.  Two counts, each the difference of two
runs under ``valgrind --tool=callgrind`` that differ only in the work measured (so
start-up and set-up cancel out):

- ``log phase``: the worker's log phase (:meth:`Capture.recorder`: the row made and
  put in the queue), over ``--records`` contexts shaped like the ``access-log``
  scenario's (``access_log_profile.contexts``), the queue taken every 4,000 rows
  as the shipper would (the rows then freed);
- ``writer``: the log-writer process's whole loop (``access_log_profile.py
  --writer-of``: frames decoded, records finished, the store sink on SQLite, the
  roll-ups and metrics stages), ``--records`` more records against 5,000.

Instructions are not time (cache misses cost time and no instruction), so a change
that the count shows must still be confirmed by ``benchmarks/run.py access-log``.
Needs valgrind (Debian's ``valgrind``).  docs/observability.md, "Counted in
instructions", has the figures and what they mean.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import access_log_profile as profile  # noqa: E402
from campusgate.observe._ship import encode_frame  # noqa: E402
from campusgate.observe.capture import Capture, Row  # noqa: E402
from campusgate.observe.queue import RecordQueue  # noqa: E402

#: The smaller run of each pair (its set-up and start-up cancel out).
BASE = 5000


def _summary(out: Path) -> int:
    match = re.search(r"^summary: (\d+)", out.read_text(errors="replace"), re.M)
    if match is None:
        raise RuntimeError(f"no callgrind summary in {out}")
    return int(match.group(1))


def _count(argv: list[str], out: Path) -> int:
    """Instructions callgrind counted running ``argv`` (threads included)."""
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return _summary(out)


def _row_child(count: int, build: bool) -> None:
    """The measured process of the log phase: contexts made, then (``build``) each
    one's row put in a queue, taken every 4,000 rows."""
    contexts = profile.contexts(count, 30_000.0)
    if build:
        queue: RecordQueue[Row] = RecordQueue(1_000_000, 5000)
        record = Capture("proxy").recorder(queue)
        for i, ctx in enumerate(contexts):
            record(ctx)
            if i % 4000 == 3999:
                queue.take(4000)


def row_instructions(count: int, work: Path) -> float:
    me = [sys.executable, __file__, "--records", str(count), "--row-child"]
    without = _count([*me, "skip"], work / "row-skip.out")
    with_rows = _count([*me, "build"], work / "row-build.out")
    return (with_rows - without) / count


def _frames(count: int, path: Path, storage: Path) -> None:
    """Frames of ``count`` rows as the shipper writes them, and a migrated store."""
    rows = [Capture("proxy").row(ctx) for ctx in profile.contexts(count, 30_000.0)]
    path.write_bytes(b"".join(encode_frame(rows[i:i + BASE])[0]
                              for i in range(0, count, BASE)))
    storage.mkdir()
    asyncio.run(profile._fresh_storage("sqlite", storage))


def writer_instructions(count: int, work: Path) -> float:
    counts = []
    for n in (BASE, BASE + count):
        frames, storage = work / f"frames-{n}", work / f"db-{n}"
        _frames(n, frames, storage)
        counts.append(_count([sys.executable, str(HERE / "access_log_profile.py"),
                              "--writer-of", str(frames), "--storage",
                              f"sqlite:///{storage}/profile.db"], work / f"writer-{n}.out"))
    return (counts[1] - counts[0]) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--row-child", choices=("skip", "build"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row_child:
        _row_child(args.records, args.row_child == "build")
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind: apt-get install -y valgrind")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"instructions per record (callgrind; {args.records:,} records)")
        print(f"{'log phase':<16} {row_instructions(args.records, work):>10,.0f}")
        print(f"{'writer':<16} {writer_instructions(args.records, work):>10,.0f}")


if __name__ == "__main__":
    main()
