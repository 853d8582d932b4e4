"""Starting, watching and always stopping the processes a benchmark needs.

Every child runs in its own session (process group), so stopping it stops whatever
it forked too (nginx's workers, campusgate's workers).  :class:`Processes` is a
context manager: leaving it, normally or by an exception or Ctrl-C, stops them all.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

__all__ = [
    "LOCALHOST",
    "Processes",
    "StartError",
    "cpu_seconds",
    "ensure_tools",
    "free_port",
    "http_get_status",
    "http_head",
    "http_request",
    "redis_call",
    "rss_kb",
    "status_of",
    "wait_http",
]

LOCALHOST = "127.0.0.1"


class StartError(RuntimeError):
    """A process did not come up (its log tail is in the message)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_tools(tools: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """Install the Debian packages of missing tools; returns what was installed.

    ``tools`` is ``[(command, [package, alternative...]), ...]``.  ``apt-get update``
    runs only if a first install fails.
    """
    installed: list[str] = []
    for command, packages in tools:
        if shutil.which(command) or Path(f"/usr/sbin/{command}").exists():
            continue
        if not shutil.which("apt-get"):
            raise StartError(f"{command} is missing and apt-get is not available")
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        done = False
        for refresh in (False, True):
            if refresh:
                subprocess.run([*sudo, "apt-get", "update"], check=False)
            for package in packages:
                result = subprocess.run(
                    [*sudo, "apt-get", "install", "-y", "--no-install-recommends", package],
                    check=False, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                )
                if result.returncode == 0:
                    installed.append(package)
                    done = True
                    break
            if done:
                break
        if not done:
            raise StartError(f"could not install {command} (tried {', '.join(packages)})")
    return installed


def http_head(port: int, path: str = "/", host: str = LOCALHOST,
              headers: Sequence[str] = (), timeout: float = 1.0) -> bytes | None:
    """The status line and headers of one ``GET`` to 127.0.0.1:port, or None.

    ``headers`` are extra ``"Name: value"`` lines (an API key, a bearer token).
    """
    extra = "".join(f"{h}\r\n" for h in headers)
    try:
        with socket.create_connection((LOCALHOST, port), timeout=timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}"
                         "Connection: close\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
    except OSError:
        return None
    return head.partition(b"\r\n\r\n")[0]


def status_of(head: bytes | None) -> int | None:
    """The status code in a response head, or None."""
    parts = (head or b"").split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return None
    return int(parts[1])


def http_get_status(port: int, path: str = "/", host: str = LOCALHOST,
                    timeout: float = 1.0, headers: Sequence[str] = ()) -> int | None:
    """The status code of one ``GET`` to 127.0.0.1:port, or None if no answer."""
    return status_of(http_head(port, path, host, headers, timeout))


def http_request(port: int, method: str, path: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None, timeout: float = 30.0,
                 conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    """One request to 127.0.0.1:port: (status, body).  ``conn`` reuses a keep-alive
    connection (the caller closes it); without one a connection is opened and closed."""
    own = conn is None
    connection = conn or http.client.HTTPConnection(LOCALHOST, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        if own:
            connection.close()


def redis_call(port: int, commands: Sequence[bytes], timeout: float = 2.0) -> list[bytes]:
    """Send RESP ``commands`` (see ``auth.resp_command``) to 127.0.0.1:port on one
    connection; the first line of each reply (``+OK``, ``:12``, ``-ERR ...``).

    Enough for the harness's PING / SELECT / FLUSHDB / DBSIZE, whose replies are one line.
    """
    replies: list[bytes] = []
    with socket.create_connection((LOCALHOST, port), timeout=timeout) as sock:
        buffer = b""
        for command in commands:
            sock.sendall(command)
            while b"\r\n" not in buffer:
                chunk = sock.recv(4096)
                if not chunk:
                    raise OSError("redis closed the connection")
                buffer += chunk
            line, _, buffer = buffer.partition(b"\r\n")
            replies.append(line)
    return replies


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used, from ``/proc/PID/stat``, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # the name may hold spaces
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds(pid: int) -> float:
    """CPU seconds (:func:`cpu_seconds`) of the running children of ``pid`` (its log
    writer, for a campusgate worker); a child that exits meanwhile counts as 0."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                total += cpu_seconds(int(child))
            except (OSError, ValueError):
                continue
    return total


def rss_kb(pid: int) -> int:
    """Resident set size of a process, from ``/proc/PID/status`` (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError(f"no VmRSS for pid {pid}")


class Processes:
    """The children of one benchmark run; all stopped on exit."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop_all()

    def log_path(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def start(self, name: str, argv: Sequence[str], cpus: str | None = None,
              cwd: Path | None = None, env: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:
        """Start ``argv`` (pinned to ``cpus`` with taskset, if given) in a new session."""
        if name in self.children:
            raise ValueError(f"{name} is already running")
        if cpus is not None:
            argv = ["taskset", "-c", cpus, *argv]
        with open(self.log_path(name), "wb") as log:
            proc = subprocess.Popen(
                list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=cwd or self.workdir, env=env, start_new_session=True,
            )
        self.children[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 20) -> str:
        try:
            text = self.log_path(name).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_http(self, name: str, port: int, path: str = "/", timeout: float = 60.0,
                  ok: Sequence[int] = (200,), headers: Sequence[str] = ()) -> None:
        """Wait until 127.0.0.1:port answers ``path`` with an ``ok`` status."""
        proc = self.children[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StartError(f"{name} exited with status {proc.returncode}:\n"
                                 + self.log_tail(name))
            if http_get_status(port, path, headers=headers) in ok:
                return
            time.sleep(0.05)
        raise StartError(f"{name} did not answer on port {port} within {timeout:.0f} s:\n"
                         + self.log_tail(name))

    def stop(self, name: str, timeout: float = 15.0) -> None:
        """SIGTERM the child's process group; SIGKILL it if it outlives ``timeout``."""
        proc = self.children.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        # The group may hold children that outlived the leader.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)

    def stop_all(self) -> None:
        for name in reversed(list(self.children)):
            self.stop(name)


def wait_http(port: int, path: str = "/", timeout: float = 10.0) -> bool:
    """Poll until 127.0.0.1:port answers 2xx; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = http_get_status(port, path)
        if status is not None and 200 <= status < 300:
            return True
        time.sleep(0.05)
    return False
