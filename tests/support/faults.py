"""The system as separate OS processes, and the faults a test injects into it: kill -9 of
any process, a broker replaced by an empty one on the same port, a PostgreSQL restart,
a full disk under the projection database."""

from __future__ import annotations

import errno
import importlib.util
import os
import random
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from api.runner import ROLES as RUNNER_ROLES
from infra.broker import LocalBroker, free_port
from infra.settings import Settings
from tests.support.system import KoshProcess

# Which processes a fault suite runs, each with the roles of `kosh up --role`.
ROLES = {"publisher": "publisher", "projections": "projections", "processes": "processes"}
if "audit" in RUNNER_ROLES and importlib.util.find_spec("consumers.audit") is not None:
    ROLES["audit"] = "audit"  # the audit trail's writer, killed like any other


class Fleet:
    """API instances (own ports), intake consumers (one group) and one process each for
    the publisher, the projections and the relocation process manager."""

    def __init__(self, settings: Settings, apis: int = 2, intakes: int = 2) -> None:
        self.settings = settings
        self.roles: dict[str, tuple[str, Settings]] = {}
        for i in range(apis):
            own = settings.model_copy(update={"api_port": free_port()})
            self.roles[f"api-{i}"] = ("api", own)
        for i in range(intakes):
            self.roles[f"intake-{i}"] = ("intake", settings)
        for name, roles in ROLES.items():
            self.roles[name] = (roles, settings)
        self.processes: dict[str, KoshProcess] = {}
        self._incarnation: dict[str, int] = {}

    @property
    def api_urls(self) -> list[str]:
        return [f"http://{s.api_host}:{s.api_port}" for r, s in self.roles.values() if r == "api"]

    def names(self, role: str | None = None) -> list[str]:
        return [n for n, (r, _) in self.roles.items() if role is None or r == role]

    def start(self, name: str) -> KoshProcess:
        roles, settings = self.roles[name]
        k = self._incarnation[name] = self._incarnation.get(name, 0) + 1
        # A log per incarnation: readiness is read from the log of this one.
        process = KoshProcess(settings, roles, name=f"{name}.{k}").start(timeout=60)
        self.processes[name] = process
        return process

    def start_all(self) -> None:
        with ThreadPoolExecutor(len(self.roles)) as pool:
            list(pool.map(self.start, self.roles))

    def kill(self, name: str) -> None:
        self.processes[name].kill()

    def alive(self, name: str) -> bool:
        process = self.processes[name].process
        return process is not None and process.poll() is None

    def kill_all(self) -> None:
        for process in self.processes.values():
            process.kill()

    def logs(self, name: str) -> str:
        """Every incarnation's log of one process, oldest first."""
        data_dir = Path(self.settings.data_dir)
        return "".join(
            (data_dir / f"{name}.{k}.log").read_text(errors="replace")
            for k in range(1, self._incarnation.get(name, 0) + 1)
            if (data_dir / f"{name}.{k}.log").exists()
        )


@dataclass
class Injected:
    kind: str
    target: str
    at_s: float  # since the load began
    down_s: float = 0.0  # from the fault until the component was back
    recovered_s: float | None = None  # from back until the registers caught up
    note: str = ""


@dataclass
class FaultLog:
    began: float = field(default_factory=time.monotonic)
    injected: list[Injected] = field(default_factory=list)

    def add(self, kind: str, target: str) -> Injected:
        fault = Injected(kind, target, round(time.monotonic() - self.began, 1))
        self.injected.append(fault)
        return fault


class ReplaceableBroker:
    """A broker of the test's own; `replace()` stops it and starts an empty one on the same
    port, which is what a memory broker's restart is: every topic, offset and group gone."""

    def __init__(self) -> None:
        self.broker = LocalBroker().start()
        self.port = self.broker.port

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    def replace(self, down_s: float = 0.5) -> None:
        self.broker.stop()
        time.sleep(down_s)
        self.broker = LocalBroker(port=self.port).start()

    def stop(self) -> None:
        self.broker.stop()


class FullDisk:
    """A size-limited file system (tmpfs) under the projection database: `fill()` takes
    every free byte, `free()` gives them back. Needs the right to mount (root)."""

    def __init__(self, data_dir: Path, size_mb: int = 64) -> None:
        self.mount = Path(data_dir) / "registers-fs"
        self.size_mb = size_mb
        self.filler = self.mount / "filler"
        self.mounted = False

    @staticmethod
    def unavailable_reason() -> str | None:
        if os.geteuid() != 0:
            return "not root: cannot mount a size-limited file system"
        probe = Path(f"/tmp/kosh-mount-probe-{os.getpid()}")
        probe.mkdir(exist_ok=True)
        try:
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)],
                capture_output=True,
                text=True,
                timeout=10,
            )
            if done.returncode != 0:
                return f"mount of a tmpfs refused: {done.stderr.strip()}"
            subprocess.run(["umount", str(probe)], check=True, timeout=10)
            return None
        except (OSError, subprocess.SubprocessError) as exc:
            return f"cannot mount a tmpfs: {exc}"
        finally:
            probe.rmdir()

    def place_registers(self) -> None:
        """Mounts the file system and points registers.sqlite into it (SQLite follows the
        link, so its -wal and -shm files live there too)."""
        self.mount.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m", "tmpfs", str(self.mount)],
            check=True,
            timeout=10,
        )
        self.mounted = True
        link = self.mount.parent / "registers.sqlite"
        link.symlink_to(self.mount / "registers.sqlite")

    def fill(self) -> int:
        """Writes until the file system says ENOSPC; returns the bytes written."""
        written, size = 0, 1 << 20
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while size:  # unbuffered, halving the chunk at each refusal, down to a byte
                try:
                    written += os.write(fd, b"\0" * size)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    size //= 2
        finally:
            os.close(fd)
        return written

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.mount)], timeout=10)
            self.mounted = False


def pause(rng: random.Random, low: float, high: float) -> None:
    time.sleep(rng.uniform(low, high))
