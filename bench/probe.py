"""Short runs of one section's work for py-spy to sample: `python -m bench.probe WHAT`.
Settings come from KOSH_* variables, as for `kosh up`."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
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
    process that started this one."""
    from bench.bus import rebuild_from_store

    settings = Settings()
    start = _high_water_mb()
    applied, seconds = rebuild_from_store(settings, settings.data_dir / "probe-rss")
    print(
        json.dumps(
            {
                "applied": applied,
                "seconds": seconds,
                "peak_rss_mb": _high_water_mb(),
                "start_rss_mb": start,
            }
        )
    )


def _high_water_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    {"write": write, "rebuild": rebuild, "verify": verify, "rss": rss}[sys.argv[1]]()
