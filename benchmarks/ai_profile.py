"""Worker CPU per call of the AI gateway's OpenAI path against the plain proxy route.

A measuring rig, not a benchmark run: it starts the fake provider and one campusgate
with the ``ai-*`` scenarios' generated config (``cgbench.ai``), drives the same POST
with wrk at fixed concurrency through ``/v1/chat/completions`` (``ai-openai``, with
the consumer key) and through the plain route (``ai-plain``), and reads the worker's
CPU time (``/proc/<pid>/stat``) around each run.  CPU per request is what other load
on a shared machine moves least, so it is what is compared, as a ratio plain/ai.

campusgate is pinned to ``--proxy-cpu`` and the fake and wrk to ``--load-cpu``, as the
harness does.  On a machine shared with other work CPU time per request still moves
by 20-30 %, so there are steadier views:

- ``--callgrind OUT``: the worker runs under valgrind's callgrind; each scenario's
  user-space instructions per request (repeatable to about 1 % whatever else runs;
  use few connections, e.g. ``--connections 8``: the worker is ~50x slower);
- ``--strace``: the worker's system calls per request (first run of each scenario);
- ``--cprofile OUT``: the worker under cProfile (stats written when it stops);
- ``--py-spy OUT``: py-spy samples (installed in the venv by hand, for measuring
  only) of the first ``ai-openai`` run, as collapsed stacks;
- ``--src DIR``: import campusgate from another source tree (a copy of the tree
  before a change), for a before/after comparison in the same conditions.

    .venv/bin/python benchmarks/ai_profile.py --runs 3 --duration 5
    .venv/bin/python benchmarks/ai_profile.py --runs 1 --duration 10 --connections 8 \
        --callgrind /tmp/cg
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cgbench import ai
from cgbench.procs import Processes, free_port, http_request
from cgbench.wrk import parse_wrk

VENV_BIN = Path(sys.executable).parent
CHAT = "/v1/chat/completions"


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, from ``/proc/PID/stat``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def wrk(port: int, path: str, script: Path, seconds: int, cpu: str,
        connections: int) -> tuple[int, float]:
    argv = ["taskset", "-c", cpu, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
            "--latency", "-s", str(script), f"http://127.0.0.1:{port}{path}"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    result = parse_wrk(out)
    if result.errors:
        raise SystemExit(f"{result.errors} errors on {path}:\n{out}")
    return result.requests, result.rps


def profiled_worker(procs: Processes, pid: int, cprofile: Path | None,
                    callgrind: Path | None, cpu: str, home: Path) -> subprocess.Popen[bytes]:
    """The same worker (its boot environment read from the running one), under
    cProfile (stats written when it stops: SIGTERM drains and returns) or callgrind
    (counting only between ``callgrind_control -z`` and ``-d``)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    env = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
    procs.stop("campusgate")
    if cprofile is not None:
        code = ("import cProfile, sys; from campusgate.worker import main; "
                f"cProfile.run('main()', {str(cprofile)!r})")
        argv = [sys.executable, "-c", code]
    else:
        argv = ["valgrind", "--tool=callgrind", "--compress-strings=no", "--compress-pos=no",
                f"--callgrind-out-file={callgrind}",
                sys.executable, "-m", "campusgate.worker"]
    return procs.start("campusgate-profiled", argv, cpus=cpu, cwd=home, env=env)


def callgrind_total(path: Path) -> int:
    """The instructions (Ir) a callgrind dump counted."""
    for line in path.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise ValueError(f"no totals in {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--proxy-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")
    parser.add_argument("--py-spy", type=Path, default=None)
    parser.add_argument("--scenarios", default="ai-plain,ai-openai")
    parser.add_argument("--src", type=Path, default=None,
                        help="import campusgate from this src directory (PYTHONPATH), "
                        "e.g. a copy of the tree before a change, for an A/B comparison")
    parser.add_argument("--strace", action="store_true",
                        help="count the worker's system calls per request (strace -c)")
    parser.add_argument("--callgrind", type=Path, default=None,
                        help="run the worker under callgrind; instructions per request "
                        "(user space only, repeatable under load) per scenario")
    parser.add_argument("--cprofile", type=Path, default=None,
                        help="run the worker under cProfile (stats written here at exit)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Processes(Path(tmp)) as procs:
        home = Path(tmp)
        fake_port = free_port()
        procs.start("fake", ai.fake_argv(fake_port), cpus=args.load_cpu)
        procs.wait_http("fake", fake_port, "/v1/models", timeout=15)
        port, admin = free_port(), free_port()
        conf = home / "campusgate.yaml"
        conf.write_text(ai.ai_yaml(proxy_port=port, admin_port=admin, fake_port=fake_port,
                                   storage=home / "campusgate.db"))
        env = {**os.environ, "CAMPUSGATE_LOG_LEVEL": "WARNING"}
        if args.src is not None:
            env["PYTHONPATH"] = str(args.src.resolve())
        proc = procs.start("campusgate", [str(VENV_BIN / "campusgate"), "serve", "-c",
                                          str(conf), "--workers", "1"],
                           cpus=args.proxy_cpu, cwd=home, env=env)
        procs.wait_http("campusgate", port, "/v1/models", timeout=300, ok=(401,))
        if args.cprofile is not None or args.callgrind is not None:
            proc = profiled_worker(procs, proc.pid, args.cprofile, args.callgrind,
                                   args.proxy_cpu, home)
            procs.wait_http("campusgate-profiled", port, "/v1/models", timeout=300, ok=(401,))
        status, body = http_request(port, "POST", CHAT,
                                    ai.chat_body("bench-openai").encode(),
                                    dict([ai.key_header(ai.API_KEY)]))
        if status != 200 or b"Hello from the fake" not in body:
            raise SystemExit(f"ai-openai answered {status}: {body[:300]!r}")
        scripts = {
            "ai-plain": (ai.PLAIN_PREFIX + CHAT, ai.post_lua(ai.chat_body("gpt-4o-mini"), None)),
            "ai-openai": (CHAT, ai.post_lua(ai.chat_body("bench-openai"), ai.API_KEY)),
            "ai-anthropic": (CHAT, ai.post_lua(ai.chat_body("bench-anthropic"), ai.API_KEY)),
        }
        names = args.scenarios.split(",")
        results: dict[str, dict[str, float]] = {}
        for name in names:
            path, lua = scripts[name]
            script = home / f"{name}.lua"
            script.write_text(lua)
            wrk(port, path, script, 2, args.load_cpu, args.connections)  # warm-up
        for name in names:
            path, _ = scripts[name]
            script = home / f"{name}.lua"
            total_req, total_cpu, total_sys, rates = 0, 0.0, 0.0, []
            for run in range(args.runs):
                spy = None
                if args.strace and run == 0:
                    spy = subprocess.Popen(["strace", "-c", "-f", "-p", str(proc.pid), "-o",
                                            str(home / f"{name}.strace")],
                                           stderr=subprocess.DEVNULL)
                    time.sleep(0.5)
                elif args.py_spy is not None and name == "ai-openai" and run == 0:
                    spy = subprocess.Popen(
                        [str(VENV_BIN / "py-spy"), "record", "--pid", str(proc.pid),
                         "--format", "raw", "--rate", "500", "--nonblocking",
                         "--duration", str(int(args.duration)), "-o", str(args.py_spy)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                if args.callgrind is not None:
                    subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True,
                                   capture_output=True)
                user0, sys0 = cpu_split(proc.pid)
                requests, rps = wrk(port, path, script, args.duration, args.load_cpu,
                                    args.connections)
                user1, sys1 = cpu_split(proc.pid)
                used = user1 - user0 + sys1 - sys0
                total_sys += sys1 - sys0
                if args.callgrind is not None:
                    dump = Path(f"{args.callgrind}.{name}.{run}")
                    before_dump = set(args.callgrind.parent.glob(args.callgrind.name + ".*"))
                    subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True,
                                   capture_output=True)
                    new = set(args.callgrind.parent.glob(args.callgrind.name + ".*"))
                    for made in new - before_dump:
                        made.rename(dump)
                    instructions = callgrind_total(dump)
                    print(f"{name} run {run + 1}: {instructions / requests:,.0f} "
                          f"instructions/request ({dump})", flush=True)
                if spy is not None:
                    if args.strace and run == 0:
                        spy.send_signal(2)
                        spy.wait()
                        print(f"{name}: system calls per request (strace -c, run 1)")
                        for line in (home / f"{name}.strace").read_text().splitlines()[2:]:
                            cols = line.split()
                            if len(cols) >= 5 and cols[3].isdigit():
                                print(f"  {cols[-1]:<16} {int(cols[3]) / requests:6.2f}")
                    else:
                        spy.wait()
                total_req += requests
                total_cpu += used
                rates.append(rps)
                print(f"{name} run {run + 1}: {rps:,.0f} req/s, "
                      f"{used / requests * 1e6:.1f} us CPU/req "
                      f"({(sys1 - sys0) / requests * 1e6:.1f} system)", flush=True)
            results[name] = {"cpu_us": total_cpu / total_req * 1e6,
                             "system_us": total_sys / total_req * 1e6,
                             "rps_median": sorted(rates)[len(rates) // 2]}
            time.sleep(0.2)
        for name, row in results.items():
            print(f"{name}: {row['cpu_us']:.1f} us CPU/req ({row['system_us']:.1f} system), "
                  f"median {row['rps_median']:,.0f} req/s")
        if "ai-plain" in results:
            for name in results:
                if name != "ai-plain":
                    ratio = results["ai-plain"]["cpu_us"] / results[name]["cpu_us"]
                    print(f"CPU ratio plain/{name}: {ratio:.3f}")
        print(json.dumps(results))


if __name__ == "__main__":
    main()
