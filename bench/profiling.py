"""Why a target was missed: py-spy samples the slow run (every thread, and the processes
it starts) and the hottest frames go into RESULTS.md."""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_OWN = ("domain/", "infra/", "projections/", "consumers/", "api/")
# A sample whose innermost frame is in one of these is a thread waiting (for a lock, a
# socket, a queue), not time spent: py-spy counts a thread blocked in such a call as busy.
_IDLE = re.compile(
    r"\((threading|selectors|queue|socket|ssl|subprocess)\.py:"
    r"|\(concurrent/futures/|\(asyncio/(base_events|selector_events|tasks)\.py:"
)


# Frames every sample of a process passes through: they say nothing about where time goes.
_ENTRY = re.compile(r"^(<module>|main \(api/cli|_up \(api/cli|run \(api/runner)")


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


def record(
    argv: Sequence[str],
    out: Path,
    *,
    env: dict[str, str] | None = None,
    seconds: float | None = None,
    rate: int = 250,
    gil: bool = False,
) -> subprocess.Popen[bytes] | None:
    """Starts `argv` under py-spy (raw collapsed stacks into `out`). With `seconds`, waits
    and stops it; else returns the process for the caller to stop()."""
    spy = py_spy()
    if spy is None:
        return None
    cmd = [
        spy,
        "record",
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--subprocesses",
        "--nonblocking",
        *(["--gil"] if gil else []),
        "--output",
        str(out),
        "--",
        *argv,
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=env or os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    if seconds is None:
        return proc
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        stop(proc)
    return None


def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGINT to the profiled program (py-spy then writes its file), SIGKILL if stuck."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=timeout)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def _frame(raw: str) -> str:
    raw = re.sub(r" \(.*?/site-packages/", " (", raw)
    return raw.replace(str(REPO) + "/", "")


def summarise(path: Path, top: int = 8) -> list[str]:
    """The hottest frames of a py-spy raw profile: where the time itself is spent, and
    which of Kosh's own functions it is spent under. Start-up (imports) and threads that
    only wait are left out."""
    if not path.exists() or path.stat().st_size == 0:
        return ["(no profile was recorded)"]
    own: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or "<frozen importlib" in stack:
            continue
        frames = [_frame(f) for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames or _IDLE.search(frames[-1]):
            continue
        n = int(count)
        total += n
        leaf[frames[-1]] += n
        for f in set(frames):
            if f.split("(")[-1].startswith(_OWN) and not _ENTRY.match(f):
                own[f] += n
    if not total:
        return ["(no busy samples)"]
    lines = [f"{total} samples; self time:"]
    lines += [f"  {100 * n / total:4.1f}% {f}" for f, n in leaf.most_common(top)]
    lines.append("time under Kosh's own functions (inclusive):")
    lines += [f"  {100 * n / total:4.1f}% {f}" for f, n in own.most_common(top)]
    return lines


def wait_for_file(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (path.exists() and path.stat().st_size):
        time.sleep(0.1)


def probe_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench.probe", *args]


def settings_env(settings: object) -> dict[str, str]:
    """KOSH_* variables that make a child process's Settings() equal `settings`."""
    from tests.support.system import settings_env as env_of

    return env_of(settings)  # type: ignore[arg-type]


def profile_probe(
    out_dir: Path,
    name: str,
    *args: str,
    env: dict[str, str] | None = None,
    seconds: float = 120,
    cpu_view: bool = False,
) -> list[str]:
    """Runs `python -m bench.probe NAME ARGS` under py-spy and summarises it. With
    `cpu_view`, a second run samples only the thread holding the GIL: in a process of
    many threads, that is where the CPU goes, whereas the first run also shows threads
    queueing on locks and I/O."""
    lines = ["every thread that is not idle:"]
    out = out_dir / f"{name}.pyspy"
    record(probe_argv(name, *args), out, env=env, seconds=seconds)
    lines += ["  " + line for line in summarise(out)]
    if cpu_view:
        out = out_dir / f"{name}-gil.pyspy"
        record(probe_argv(name, *args), out, env=env, seconds=seconds, gil=True)
        lines += ["only the thread holding the GIL (the CPU):"]
        lines += ["  " + line for line in summarise(out)]
    return lines
