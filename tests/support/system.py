"""Runs `kosh up` as a real OS process with test settings, so tests can kill it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from infra.settings import Settings
from tests.support.auth import EVERY_ROLE, auth_headers

REPO = Path(__file__).resolve().parents[2]


def settings_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOSH_")}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, dict | list):
            env[f"KOSH_{name.upper()}"] = json.dumps(value)  # pydantic-settings reads JSON
        elif value is not None:
            env[f"KOSH_{name.upper()}"] = str(value)
    env["KOSH_LOG_FORMAT"] = "json"
    return env


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, every: float = 0.05,
               what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last_error = exc
        time.sleep(every)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}; last error {last_error!r}"
    )


class KoshProcess:
    """`python -m api.cli up --role ROLES` with its log in the test's data dir."""

    def __init__(self, settings: Settings, roles: str = "all", name: str = "kosh") -> None:
        self.settings = settings
        self.roles = roles
        self.log_path = Path(settings.data_dir) / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    def client(self, *roles: str, timeout: float = 10) -> httpx.Client:
        """An HTTP client authenticated as a user with `roles` (default: every working
        role)."""
        return httpx.Client(base_url=self.base_url, timeout=timeout,
                            headers=auth_headers(self.settings, *(roles or EVERY_ROLE)))

    def start(self, timeout: float = 30.0) -> KoshProcess:
        Path(self.settings.data_dir).mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "up", "--role", self.roles],
            cwd=REPO, env=settings_env(self.settings), stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.process.poll() is not None:
                raise AssertionError(f"kosh exited early:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"kosh did not start in {timeout}s:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        return self

    def _ready(self) -> bool:
        try:
            return self._started()
        except httpx.HTTPError:
            return False

    def _started(self) -> bool:
        return '"kosh.running"' in self.log() and (
            "api" not in self.roles and self.roles != "all"
            or httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """kill -9: no clean-up, no flush, as a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"kosh did not stop on SIGTERM:\n{self.log()[-3000:]}") from None
