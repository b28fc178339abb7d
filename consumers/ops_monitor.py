"""What operations watch: every component's position, lag, rate and failures.

Everything is read from the databases (the event store's and the registers'), so the
picture is the same whichever process asks and whichever processes run the components.
Lag is the store head minus what a component handled, never a broker offset (the local
broker reports end offsets wrongly). Rates come from this monitor's own recent samples.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from eventsourcing.persistence import ApplicationRecorder

from consumers.dead_letters import DeadLetterLog, ParkedEvents
from infra.idempotency import IdempotencyStore
from infra.metrics import ComponentStatus, Snapshot
from infra.positions import PositionStore
from infra.publisher import POSITION_NAME
from infra.settings import Settings
from infra.sql import Database

log = structlog.get_logger(__name__)

RATE_WINDOW_S = 30.0
PROJECTIONS_GROUP = "projections"


@dataclass(frozen=True)
class Readiness:
    ready: bool
    checks: dict[str, dict[str, Any]]


class OpsMonitor:
    def __init__(self, settings: Settings, store_db: Database, registers_db: Database,
                 recorder: ApplicationRecorder, projection_names: Iterable[str]) -> None:
        self.settings = settings
        self.recorder = recorder
        self.registers_db = registers_db
        self.positions = PositionStore(store_db)
        self.commands = IdempotencyStore(store_db, recorder)
        self.dead_letters = DeadLetterLog(store_db)
        # Projection consumers log theirs beside the registers: another file on SQLite.
        self.dead_letter_logs = [self.dead_letters] + (
            [] if registers_db.is_postgres else [DeadLetterLog(registers_db)])
        self.parked = ParkedEvents(registers_db)
        self.projection_names = sorted(projection_names)
        self._samples: deque[tuple[float, dict[str, int]]] = deque()
        self._lock = threading.Lock()

    def snapshot(self) -> Snapshot:
        """Reads every component's state now; raises when a database is unreachable."""
        now = time.time()
        head = self.recorder.max_notification_id() or 0
        published = self.positions.get(POSITION_NAME)
        status = self._projection_status()
        parked, parked_latest = self.parked.counts(), self.parked.latest()
        commands = self.commands.outcome_counts()
        dead: dict[tuple[str, str], int] = {}
        dead_latest: dict[str, tuple[str, float]] = {}
        for dl_log in self.dead_letter_logs:
            for k, n in dl_log.counts().items():
                dead[k] = dead.get(k, 0) + n
            dead_latest.update(dl_log.latest())
        recorded = sum(commands.values())

        group = self.settings.group_id(PROJECTIONS_GROUP)
        positions = {"publisher": published, "intake": recorded}
        rows: list[tuple[str, str, str, int, int | None, int, tuple[str, float] | None]] = [
            ("publisher", "publisher", "", published, max(head - published, 0), 0, None)]
        names = sorted(set(self.projection_names) | set(status) | set(parked))
        for name in names:
            applied, _ = status.get(name, (0, 0))
            handled = applied + parked.get(name, 0)
            positions[f"projection:{name}"] = handled
            rows.append((f"projection:{name}", "projection", group, applied,
                         max(head - handled, 0), parked.get(name, 0), parked_latest.get(name)))
        intake_failed = sum(n for (stage, _), n in dead.items() if stage == "intake")
        rows.append(("intake", "intake", self.settings.group_id("intake"), recorded, None,
                     intake_failed, dead_latest.get("intake")))
        rates = self._rates(now, positions)
        components = [
            ComponentStatus(
                component=c, kind=k, group=g, position=p, lag=lag, rate=rates.get(c),
                failed=failed, last_error=latest[0] if latest else "",
                last_error_at=latest[1] if latest else None,
            )
            for c, k, g, p, lag, failed, latest in rows
        ]
        return Snapshot(
            at=now, store_head=head, components=components, commands=commands,
            dead_letters=dead,
            projection_max_seq={n: s[1] for n, s in status.items()},
        )

    def _projection_status(self) -> dict[str, tuple[int, int]]:
        try:
            rows = self.registers_db.query(
                "SELECT projection, applied_count, max_seq FROM projection_status"
            )
        except Exception:  # noqa: BLE001 - no projector has run against this database yet
            self.registers_db.reset()
            return {}
        return {r[0]: (int(r[1]), int(r[2])) for r in rows}

    def _rates(self, now: float, positions: dict[str, int]) -> dict[str, float]:
        with self._lock:
            self._samples.append((now, positions))
            while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW_S:
                self._samples.popleft()
            then, old = self._samples[0]
        if now - then < 0.5:
            return {}
        return {c: max(p - old.get(c, 0), 0) / (now - then) for c, p in positions.items()}

    def readiness(self, broker_timeout_s: float = 2.0) -> Readiness:
        checks: dict[str, dict[str, Any]] = {}
        snapshot = None
        try:
            snapshot = self.snapshot()
            checks["store"] = {"ok": True}
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks["store"] = {"ok": False, "error": type(exc).__name__}
        checks["broker"] = broker_check(self.settings, broker_timeout_s)
        if snapshot is not None:
            behind = {c.component: c.lag for c in snapshot.components
                      if c.kind == "projection" and (c.lag or 0) > self.settings.ready_max_lag}
            checks["projections"] = {"ok": not behind, "max_lag": self.settings.ready_max_lag,
                                     "behind": behind}
        else:
            checks["projections"] = {"ok": False, "error": "store unreachable"}
        return Readiness(all(c["ok"] for c in checks.values()), checks)

    def run(self, stop: threading.Event, interval_s: float = 5.0) -> None:
        """Logs failures and lag as they appear, so nothing stops silently."""
        seen: dict[str, int] = {}
        while not stop.wait(interval_s):
            try:
                snapshot = self.snapshot()
            except Exception as exc:  # noqa: BLE001 - keep watching
                log.warning("ops.snapshot_failed", error=type(exc).__name__)
                continue
            for c in snapshot.components:
                if c.failed > seen.get(c.component, 0):
                    log.error("ops.failures", component=c.component, failed=c.failed,
                              last_error=c.last_error)
                seen[c.component] = c.failed
                if c.lag is not None and c.lag > self.settings.ready_max_lag:
                    log.warning("ops.lagging", component=c.component, lag=c.lag)


def broker_check(settings: Settings, timeout_s: float) -> dict[str, Any]:
    """A metadata round trip with a short timeout."""
    admin = None
    try:
        admin = admin_client_quick(settings, timeout_s)
        topics = set(admin.list_topics())
        missing = [t for t in (settings.events_topic, settings.commands_topic)
                   if t not in topics]
        if missing:
            return {"ok": False, "error": "topics missing", "topics": missing}
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        return {"ok": False, "error": type(exc).__name__}
    finally:
        if admin is not None:
            try:
                admin.close()
            except Exception:  # noqa: BLE001
                pass


def admin_client_quick(settings: Settings, timeout_s: float) -> Any:
    from kafka.admin import KafkaAdminClient

    from infra.topics import kafka_client_config

    ms = int(timeout_s * 1000)
    return KafkaAdminClient(**kafka_client_config(settings), client_id="kosh-ready",
                            request_timeout_ms=ms, bootstrap_timeout_ms=ms)
