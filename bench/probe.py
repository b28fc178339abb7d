"""Short runs of one section's work for py-spy to sample: `python -m bench.probe WHAT`.
Settings come from KOSH_* variables, as for `kosh up`."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from infra.settings import Settings


def write(seconds: float = 6.0) -> None:
    from bench.workload import run_pairs, submissions
    from infra.application import KoshApplication
    from infra.heap import freeze_startup_heap

    workdir = Path(tempfile.mkdtemp(prefix="kosh-probe-"))
    try:
        app = KoshApplication(Settings(data_dir=workdir))
        freeze_startup_heap()
        deadline = time.monotonic() + seconds
        offset = 0
        while time.monotonic() < deadline:
            run_pairs(app, submissions(500, offset))
            offset += 500
        app.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def rebuild() -> None:
    from bench.bus import rebuild_from_store

    settings = Settings()
    rebuild_from_store(settings, settings.data_dir / "probe-rebuild")


def verify() -> None:
    from projections.audit.verify import verify_store

    verify_store(Settings())


def rss() -> None:
    """Prints the rebuild's figures as JSON. Peak RSS is the kernel's high-water mark of
    this process's memory (VmHWM): getrusage's ru_maxrss would carry over the peak of the
    process that started this one. The rebuild also runs in forked children (and reads
    Kafka in one), so the memory of all of them together is sampled too, as the sum of
    their PSS (a page shared after the fork counts once, split between its sharers)."""
    from bench.bus import rebuild_from_store

    settings = Settings()
    split = sys.argv[2:] == ["split"]
    start = _high_water_mb()
    sampler = _TreePss()
    sampler.start()
    applied, seconds = rebuild_from_store(
        settings, settings.data_dir / ("probe-rss-split" if split else "probe-rss"), split
    )
    sampler.stop()
    print(
        json.dumps(
            {
                "applied": applied,
                "seconds": seconds,
                "peak_rss_mb": _high_water_mb(),
                "peak_tree_pss_mb": sampler.peak_mb,
                "tree_processes": sampler.most,
                "start_rss_mb": start,
            }
        )
    )


class _TreePss(threading.Thread):
    """Peak of the summed PSS of this process and its descendants, every `every` s."""

    def __init__(self, every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.every, self.peak_mb, self.most = every, 0.0, 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.every):
            pids = _tree(os.getpid())
            self.most = max(self.most, len(pids))
            self.peak_mb = max(self.peak_mb, sum(_pss_kb(p) for p in pids) / 1024)

    def stop(self) -> None:
        self._done.set()
        self.join()


def _tree(root: int) -> list[int]:
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                todo += map(int, Path(f"/proc/{pid}/task/{task}/children").read_text().split())
        except OSError:
            continue  # ended meanwhile
    return out


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass  # ended meanwhile
    return 0


def _high_water_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    {"write": write, "rebuild": rebuild, "verify": verify, "rss": rss}[sys.argv[1]]()
