"""What the numbers were measured on: cores, CPU, tool versions, the git commit."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

__all__ = ["machine_info"]


def _run(argv: list[str], cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=10,
                             check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (out.stdout or out.stderr).strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(repo: Path) -> dict[str, object]:
    """Facts about this machine and checkout (read-only git commands only)."""
    from campusgate import __version__

    wrk_line = _run(["wrk", "--version"]).splitlines()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "campusgate": __version__,
        "nginx": _run(["nginx", "-v"]).removeprefix("nginx version: "),
        "wrk": " ".join(wrk_line[0].split()[:2]) if wrk_line else "",
        "git_commit": _run(["git", "rev-parse", "HEAD"], cwd=repo),
        "git_dirty": bool(_run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=repo)),
    }
