"""One fault run: the system as separate processes on a broker (and, for PostgreSQL, a
server) of its own, a mixed load over HTTP and Kafka, faults at random points, then the
checker and the figures. Used by tests/faults/ (short) and chaos/ (long)."""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from infra.settings import Settings
from tests.support import faults_check as check
from tests.support.builders import registration_body
from tests.support.faults import (
    ROLES,
    FaultLog,
    Fleet,
    FullDisk,
    Injected,
    ReplaceableBroker,
    pause,
)
from tests.support.faults_postgres import ThrowawayPostgres
from tests.support.faults_report import figures, render
from tests.support.load_mix import LoadMix
from tests.support.system import wait_until

KILLABLE = (
    "publisher",
    "projections",
    "processes",
    "intake",
    "api",
    *(("audit",) if "audit" in ROLES else ()),
)


@dataclass
class Plan:
    store: str  # sqlite | postgres
    faults: list[str]  # kill:<role>, broker, postgres, disk_full
    data_dir: Path
    seed: int = field(default_factory=lambda: random.randrange(10**6))
    workers: int = 6
    gap_s: tuple[float, float] = (0.5, 2.0)  # load between two faults
    warmup_s: float = 2.0
    tail_s: float = 2.0
    apis: int = 2
    intakes: int = 2
    quota_limit: int = 25
    recovery_timeout_s: float = 90.0
    shuffle: bool = True  # faults in a seeded random order


@dataclass
class Outcome:
    problems: list[str]
    figures: dict[str, Any]
    table: str


class Scenario:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.log = FaultLog()
        self.broker: ReplaceableBroker | None = None
        self.pg: ThrowawayPostgres | None = None
        self.disk: FullDisk | None = None
        self.fleet: Fleet | None = None
        self.load: LoadMix | None = None
        self.views: check.Views

    def settings(self) -> Settings:
        tag = uuid.uuid4().hex[:8]
        assert self.broker is not None
        values: dict[str, Any] = {
            "data_dir": self.plan.data_dir,
            "kafka_bootstrap": self.broker.bootstrap,
            "topic_prefix": f"f{tag}",
            "consumer_group_prefix": f"f{tag}",
            "publisher_idle_ms": 20,
            "jwt_secret": f"faults-{tag}-{uuid.uuid4().hex}",
            # A killed executor's claim is taken over after this long, not 30 s.
            "idempotency_claim_timeout_s": 3.0,
        }
        if self.pg is not None:
            values.update(database_url=self.pg.url, database_schema="kosh")
        return Settings(**values)

    def run(self) -> Outcome:
        # The test's own Kafka clients log every refused connection while the broker is
        # away on purpose; those lines would bury a failure's message.
        kafka_log = logging.getLogger("kafka")
        level = kafka_log.level
        kafka_log.setLevel(logging.CRITICAL)
        try:
            return self._run()
        finally:
            self.close()
            kafka_log.setLevel(level)

    def _run(self) -> Outcome:
        plan = self.plan
        plan.data_dir.mkdir(parents=True, exist_ok=True)
        self.broker = ReplaceableBroker()
        if plan.store == "postgres":
            self.pg = ThrowawayPostgres().start()
        settings = self._settings = self.settings()
        if "disk_full" in plan.faults:
            self.disk = FullDisk(plan.data_dir)
            self.disk.place_registers()
        self.fleet = Fleet(settings, plan.apis, plan.intakes)
        self.fleet.start_all()
        self.views = check.Views(settings)
        self.seeded = max((e.seq for e in self.views.stored_events()), default=0)
        self.load = LoadMix(settings, self.fleet.api_urls, plan.seed, quota_limit=plan.quota_limit)
        self.load.setup()

        stop = threading.Event()
        workers = [
            threading.Thread(target=self.load.run, args=(i, stop), name=f"load-{i}", daemon=True)
            for i in range(plan.workers)
        ]
        self.log = FaultLog()
        for w in workers:
            w.start()
        time.sleep(plan.warmup_s)
        schedule = list(plan.faults)
        if plan.shuffle:
            self.rng.shuffle(schedule)
        for kind in schedule:
            pause(self.rng, *plan.gap_s)
            self.inject(kind, settings)
        time.sleep(plan.tail_s)
        stop.set()
        for w in workers:
            w.join(180)
        load_ended = time.monotonic()

        # Fresh reading connections: the old ones may have died with a PostgreSQL restart.
        self.views = check.Views(settings)
        events = self.quiesce(settings)
        settle_s = round(time.monotonic() - load_ended, 2)
        problems = self.verify(settings, events)
        numbers = figures(
            self.load.ledger.sent, self.log.injected, events, settle_s, self.audit_note, plan
        )
        table = render(numbers, self.log.injected)
        (plan.data_dir / "fault-figures.txt").write_text(table + "\n\n" + "\n".join(problems))
        (plan.data_dir / "fault-figures.json").write_bytes(
            orjson.dumps(
                {
                    "figures": numbers,
                    "faults": [vars(f) for f in self.log.injected],
                    "problems": problems,
                },
                option=orjson.OPT_INDENT_2,
            )
        )
        return Outcome(problems, numbers, table)

    # -- faults --------------------------------------------------------------------------

    def inject(self, kind: str, settings: Settings) -> Injected:
        assert self.fleet is not None and self.load is not None
        began = time.monotonic()
        if kind.startswith("kill:"):
            role = kind.split(":", 1)[1]
            names = self.fleet.names(role) or [role]
            name = self.rng.choice(names)
            fault = self.log.add("kill -9", name)
            self.fleet.kill(name)
            pause(self.rng, 0.1, 1.0)
            self.fleet.start(name)
        elif kind == "broker":
            assert self.broker is not None
            fault = self.log.add("broker replaced (empty)", self.broker.bootstrap)
            self.broker.replace(self.rng.uniform(0.2, 1.0))
            self.load.kafka.broker_replaced()
        elif kind == "postgres":
            assert self.pg is not None, "the postgres fault needs the PostgreSQL store"
            fault = self.log.add("PostgreSQL restart", f"port {self.pg.port}")
            self.pg.restart(self.rng.uniform(0.2, 1.5))
        elif kind == "disk_full":
            fault = self.log.add("registers disk full", "tmpfs")
            fault.note = self.fill_disk()
        else:
            raise ValueError(f"unknown fault {kind!r}")
        fault.down_s = round(time.monotonic() - began, 2)
        fault.recovered_s = self.recovered(settings)
        return fault

    def fill_disk(self) -> str:
        """Fills the registers' file system until the projection consumer fails a batch
        on it, keeps it full a moment, frees it; the consumer must still be running.
        Registrations go in over HTTP meanwhile, so there is something to write even when
        the load's workers all wait on Kafka (after a broker loss, say)."""
        assert self.disk is not None and self.fleet is not None and self.load is not None
        fleet, load = self.fleet, self.load

        def failed() -> int:
            return fleet.logs("projections").count('"projection.batch_failed"')

        before = failed()
        self.disk.fill()
        hit = threading.Event()

        def write() -> None:
            rng = random.Random(self.plan.seed)
            while not hit.is_set():
                load.send(
                    rng, "submit_registration", registration_body(load.person()), channel="http"
                )
                time.sleep(0.2)

        writer = threading.Thread(target=write, name="disk-full-writer", daemon=True)
        writer.start()
        try:
            wait_until(
                lambda: failed() > before,
                timeout=45,
                every=0.2,
                what="the projection consumer to hit the full disk",
            )
            time.sleep(self.rng.uniform(0.5, 1.5))
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnosis()}") from None
        finally:
            hit.set()
            self.disk.free()
            writer.join(120)
        if not fleet.alive("projections"):
            raise AssertionError(
                "the projection consumer died on a full disk:\n" + fleet.logs("projections")[-3000:]
            )
        return f"{failed() - before} failed batch(es) retried"

    def recovered(self, settings: Settings) -> float:
        """Seconds until every register has applied what the store held at this moment."""
        began = time.monotonic()
        target = wait_until(self.views.store_count, timeout=60, what="the store to answer")
        try:
            wait_until(
                lambda: min(self.views.applied_counts().values()) >= target,
                timeout=self.plan.recovery_timeout_s,
                every=0.1,
                what=f"the registers to catch up with {target} stored events",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnosis()}") from None
        return round(time.monotonic() - began, 2)

    def diagnosis(self) -> str:
        """What a person needs when the system did not recover: the faults so far, how far
        each register got, what was parked, and the errors each process logged last."""
        lines = [render({"seed": self.plan.seed}, self.log.injected)]
        try:
            lines.append(
                f"store events: {self.views.store_count()}, applied: {self.views.applied_counts()}"
            )
            parked = self.views.registers_db.query(
                "SELECT projection, seq, event_type, reason FROM projection_parked"
            )
            lines.append(f"parked: {parked[:10]}")
        except Exception as exc:  # noqa: BLE001 - the diagnosis must not hide the failure
            lines.append(f"(registers unreadable: {exc!r})")
        if self._settings is not None:
            lines.append(intake_positions(self._settings))
        if self.fleet is not None:
            for name in self.fleet.roles:
                logged = self.fleet.logs(name).splitlines()
                errors = [
                    line[:300] for line in logged if '"error"' in line or "Error" in line
                ][-5:]
                # A consumer stuck in a batch logs where it waits: the stacks are the finding.
                stuck = [line[:6000] for line in logged if "consumer.attempt_stuck" in line][-1:]
                lines += [f"-- {name}", *errors, *stuck]
        return "\n".join(lines)

    # -- after the load ------------------------------------------------------------------

    def quiesce(self, settings: Settings) -> list[check.Stored]:
        """Waits until the process manager has settled every arrival and every register has
        applied every stored event; returns the store's events."""
        found: list[list[check.Stored]] = []

        def settled() -> bool:
            events = self.views.stored_events()
            counts = self.views.applied_counts()
            if check.unsettled_arrivals(events) or set(counts.values()) != {len(events)}:
                return False
            found.append(events)
            return True

        try:
            wait_until(
                settled,
                timeout=self.plan.recovery_timeout_s,
                every=0.5,
                what="the registers and the process manager to settle",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnosis()}") from None
        return found[-1]

    def verify(self, settings: Settings, events: list[check.Stored]) -> list[str]:
        assert self.load is not None
        ledger = self.load.ledger.sent
        problems = list(self.load.crashes)
        unanswered = [
            f"{s.channel} {s.command_type} #{s.n} got no answer in time"
            for s in ledger
            if s.result == "unknown"
        ]
        if unanswered:
            unanswered.append(self.diagnosis())
        problems += unanswered
        problems += [
            f"{s.channel} {s.command_type} #{s.n} was refused {s.status} {s.code}: "
            "credentials or a server error must not be a refusal"
            for s in ledger
            if s.status in (401, 403) or (s.status or 0) >= 500
        ]
        problems += check.check_commands(ledger, events, self.seeded)
        problems += check.check_races(ledger)
        quota_problems, _ = check.check_quotas(events)
        problems += quota_problems
        problems += check.check_process_manager(events)
        problems += check.check_registers(self.views, events)
        audit_problems, self.audit_note = check.audit_verify(
            settings, len(events) if "audit" in ROLES else None
        )
        problems += audit_problems
        return problems

    audit_note = ""
    seeded = 0
    _settings: Settings | None = None

    def close(self) -> None:
        closers: list[Callable[[], None]] = []
        if self.fleet is not None:
            closers.append(self.fleet.kill_all)
        if self.load is not None:
            closers.append(self.load.close)
        if self.broker is not None:
            closers.append(self.broker.stop)
        if self.pg is not None:
            closers.append(self.pg.close)
        if self.disk is not None:
            closers.append(self.disk.close)
        for close in closers:
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - keep cleaning up
                print(f"clean-up step failed: {exc!r}")


def intake_positions(settings: Settings) -> str:
    """The intake group's committed offset on each commands partition beside the
    partition's end: a committed offset past the end (a position from a broker that lost
    its data) leaves a consumer waiting on this broker, which never says so. The broker's
    end offsets can read low when a batch holds several records (KAFKA_NOTES.md)."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap,
                                 request_timeout_ms=5000)
        consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
        try:
            group = settings.group_id("intake")
            committed = admin.list_group_offsets(group).get(group, {})
            parts = [TopicPartition(settings.commands_topic, p)
                     for p in sorted(consumer.partitions_for_topic(settings.commands_topic)
                                     or ())]
            ends = consumer.end_offsets(parts)
        finally:
            consumer.close()
            admin.close()
    except Exception as exc:  # noqa: BLE001 - the diagnosis must not hide the failure
        return f"(intake offsets unreadable: {exc!r})"
    cells = [f"{tp.partition}: committed {getattr(committed.get(tp), 'offset', None)}, "
             f"end {ends.get(tp)}" for tp in parts]
    return "intake group on the commands topic: " + "; ".join(cells)
