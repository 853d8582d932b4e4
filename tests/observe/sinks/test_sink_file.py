"""The file sink on the real file system: JSON lines, rotation by size and by age
(an injected clock), several writers on one file, a removed directory, a full disk."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from campusgate.config.observe_sinks import FileSink
from campusgate.observe.record import FIELDS
from campusgate.observe.sinks.base import SinkEnv
from campusgate.observe.sinks.file import JsonLinesFile, build

ENV = SinkEnv(storage="sqlite:///unused.db", worker_id="test:1:0")


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def sizes(directory: Path) -> list[int]:
    return [p.stat().st_size for p in directory.iterdir()]


def spec(path: Path, **settings: Any) -> FileSink:
    return FileSink.model_validate({"type": "file", "path": str(path), **settings})


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_records_are_json_lines_with_the_record_keys(tmp_path: Path,
                                                           make_record: Any) -> None:
    path = tmp_path / "logs" / "access.jsonl"
    sink = build(spec(path), ENV)
    records = [make_record(0), make_record(1, ai_redactions={"email": 2}, path='/a"b\n')]
    await sink.write(records)
    await sink.write([make_record(2)])
    await sink.close()
    got = lines(path)
    assert [r["request_id"] for r in got] == [r.request_id for r in records] + [
        make_record(2).request_id]
    assert got[1] == records[1].as_dict()
    assert list(got[0]) == list(FIELDS)
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    assert sink.name == f"file:{path}"


async def test_rotation_by_size_keeps_the_newest_files(tmp_path: Path, make_record: Any) -> None:
    path = tmp_path / "access.jsonl"
    sink = JsonLinesFile(spec(path, max_bytes=1024, keep=2))
    one = len(json.dumps(make_record(0).as_dict(), separators=(",", ":"))) + 1
    per_file = 1024 // one
    assert per_file >= 1
    for n in range(per_file * 4):
        await sink.write([make_record(n)])
    await sink.close()
    files = names(tmp_path)
    assert files == ["access.jsonl", "access.jsonl.1", "access.jsonl.2"]
    for name in files:
        assert (tmp_path / name).stat().st_size <= 1024
    # newest first: .2 holds older records than .1, which holds older than the live file
    ids = [[int(r["request_id"], 16) for r in lines(tmp_path / name)]
           for name in ("access.jsonl.2", "access.jsonl.1", "access.jsonl")]
    flat = [n for chunk in ids for n in chunk]
    assert flat == sorted(flat) and flat[-1] == per_file * 4 - 1
    assert all(len(chunk) == per_file for chunk in ids)


async def test_a_batch_larger_than_max_bytes_still_lands_whole(tmp_path: Path,
                                                              make_record: Any) -> None:
    path = tmp_path / "access.jsonl"
    sink = JsonLinesFile(spec(path, max_bytes=1024, keep=1))
    await sink.write([make_record(n) for n in range(20)])
    await sink.write([make_record(n) for n in range(20, 40)])
    await sink.close()
    assert len(lines(path)) == 20 and len(lines(tmp_path / "access.jsonl.1")) == 20


async def test_rotation_by_age_with_an_injected_clock(tmp_path: Path, make_record: Any) -> None:
    path = tmp_path / "access.jsonl"
    start = make_record(0).time
    clock = Clock(start)
    sink = JsonLinesFile(spec(path, max_age="1d", keep=3), clock=clock)
    await sink.write([make_record(0)])
    clock.now = start + 86399
    await sink.write([make_record(1)])
    assert not (tmp_path / "access.jsonl.1").exists()
    clock.now = start + 86400
    await sink.write([make_record(2, time=clock.now)])
    assert [r["request_id"] for r in lines(tmp_path / "access.jsonl.1")] == [
        make_record(0).request_id, make_record(1).request_id]
    await sink.close()
    # a restarted worker reads the age back from the file's first record
    clock.now = start + 86400 + 86399
    again = JsonLinesFile(spec(path, max_age="1d", keep=3), clock=clock)
    await again.write([make_record(3)])
    assert not (tmp_path / "access.jsonl.2").exists()
    clock.now = start + 2 * 86400
    await again.write([make_record(4)])
    await again.close()
    assert len(lines(tmp_path / "access.jsonl.2")) == 2
    assert len(lines(tmp_path / "access.jsonl.1")) == 2
    assert len(lines(path)) == 1


async def test_keep_zero_keeps_no_old_file(tmp_path: Path, make_record: Any) -> None:
    path = tmp_path / "access.jsonl"
    sink = JsonLinesFile(spec(path, max_bytes=1024, keep=0))
    for n in range(30):
        await sink.write([make_record(n)])
    await sink.close()
    assert names(tmp_path) == ["access.jsonl"]
    assert lines(path)[-1]["request_id"] == make_record(29).request_id


async def test_a_removed_directory_is_created_again(tmp_path: Path, make_record: Any) -> None:
    path = tmp_path / "gone" / "access.jsonl"
    sink = build(spec(path), ENV)
    await sink.write([make_record(0)])
    shutil.rmtree(tmp_path / "gone")
    await sink.write([make_record(1)])
    await sink.close()
    assert [r["request_id"] for r in lines(path)] == [make_record(1).request_id]


async def test_a_file_moved_away_by_logrotate_is_reopened(tmp_path: Path,
                                                          make_record: Any) -> None:
    path = tmp_path / "access.jsonl"
    sink = build(spec(path), ENV)
    await sink.write([make_record(0)])
    path.rename(tmp_path / "access.jsonl.old")
    await sink.write([make_record(1)])
    await sink.close()
    assert len(lines(tmp_path / "access.jsonl.old")) == 1 and len(lines(path)) == 1


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
async def test_a_full_disk_fails_the_batch_and_the_sink_carries_on(
        tmp_path: Path, make_record: Any) -> None:
    sink = JsonLinesFile(spec(Path("/dev/full"), max_bytes=1024))
    for attempt in range(2):
        with pytest.raises(OSError) as caught:
            await sink.write([make_record(attempt)])
        assert caught.value.errno == errno.ENOSPC
    await sink.close()


async def test_two_workers_share_one_file_and_its_rotation(tmp_path: Path,
                                                           make_record: Any) -> None:
    """Two sinks (two descriptors, as two worker processes have) write at once from
    two threads: every line arrives whole, once, across the rotated files."""
    path = tmp_path / "access.jsonl"
    # rotation by size only: the records' times are in 2023, and a sink that opens
    # a file another one began reads its age from the first line -- with the real
    # clock every batch would be "a day old", rotate, and past 100 files the
    # oldest would go (a race of the test's data, not of the sink)
    sinks = [JsonLinesFile(spec(path, max_bytes=8192, keep=100), clock=Clock(make_record().time))
             for _ in range(2)]
    go = threading.Barrier(2)

    def run(worker: int) -> None:
        go.wait()
        for n in range(200):
            sinks[worker].write_records([make_record(worker * 1000 + n * 2 + 0),
                                         make_record(worker * 1000 + n * 2 + 1)])

    await asyncio.gather(*(asyncio.to_thread(run, w) for w in range(2)))
    for sink in sinks:
        await sink.close()
    seen = [int(r["request_id"], 16) for name in names(tmp_path)
            for r in lines(tmp_path / name)]
    assert sorted(seen) == sorted(w * 1000 + n for w in range(2) for n in range(400))
    assert len(names(tmp_path)) > 3
    assert max(sizes(tmp_path)) <= 8192


def test_the_config_model_reads_ages_and_rejects_bad_values() -> None:
    assert spec(Path("/x"), max_age="7d").max_age == 7 * 86400
    assert spec(Path("/x"), max_age=90).max_age == 90
    with pytest.raises(ValueError):
        spec(Path("/x"), max_age="soon")
    with pytest.raises(ValueError):
        spec(Path("/x"), max_bytes=10)
