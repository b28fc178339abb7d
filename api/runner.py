"""`kosh up`: starts the parts of the system in one process and stops them cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import structlog
import uvicorn

from api.bootstrap import Kosh, bootstrap, build_mapper, build_projector, store_database
from api.http import create_app
from api.http_protocol import GatheringHttpToolsProtocol
from api.status import start_ops_monitor
from consumers.intake import IntakeConsumer
from consumers.projections import projection_broker, subscribe_projector
from consumers.relocation_process import relocation_process_broker
from infra.broker import LocalBroker
from infra.heap import freeze_startup_heap
from infra.leader import leader_lock, run_as_leader
from infra.positions import PositionStore
from infra.publisher import Publisher
from infra.publisher_doorbell import Bell, Listener
from infra.settings import Settings
from infra.topics import admin_client, ensure_topics

log = structlog.get_logger(__name__)
ROLES = ("api", "publisher", "projections", "processes", "intake")
WRITERS = frozenset({"api", "processes", "intake"})  # roles that execute commands


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the runner owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def prepare_topics(settings: Settings) -> None:
    admin = admin_client(settings)
    try:
        ensure_topics(admin, settings)
    finally:
        admin.close()


def publish_while_leader(settings: Settings, kosh: Kosh, stop: threading.Event) -> None:
    """Publishes only while this instance holds the publisher lock (one across instances);
    a Publisher is built on each take-over so it starts from the stored position."""
    current: list[Publisher] = []
    kosh.after_commit.append(lambda: current[-1].wake() if current else None)

    def lead(lead_stop: threading.Event) -> None:
        publisher = Publisher(settings, kosh.app.recorder, PositionStore(store_database(settings)))
        current.append(publisher)
        # Writers in other processes on this machine ring instead of waiting for a poll.
        doorbell = Listener(settings, publisher.wake).start()
        try:
            publisher.run(lead_stop)
        finally:
            doorbell.stop()

    run_as_leader(leader_lock(settings), lead, stop, settings.publisher_lock_poll_ms / 1000)


def _closer(close: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def stopper() -> None:
        close()

    return stopper


async def start_together(
    starts: list[tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]],
    stoppers: list[Callable[[], Awaitable[None]]],
) -> None:
    """Runs every (start, stop) pair's start at once; each one that started has its stop
    added to `stoppers`, so that a failure of one still stops the others, and then the
    first failure is raised."""
    outcomes = await asyncio.gather(*(start() for start, _ in starts), return_exceptions=True)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    stoppers += [stop for (_, stop), o in zip(starts, outcomes, strict=True)
                 if not isinstance(o, BaseException)]
    if failures:
        raise failures[0]


def _check_connection_budget(settings: Settings) -> None:
    from infra.pg_pool import budget_warning

    assert settings.database_url is not None
    budget = settings.database_pool_size + settings.database_store_pool_size
    try:
        warning = budget_warning(settings.database_url, budget)
    except Exception as exc:  # noqa: BLE001 - a check, not a condition of starting
        log.warning("postgres.budget_unchecked", error=repr(exc))
        return
    if warning:
        log.warning("postgres.connection_budget", budget=budget, message=warning)
    else:
        log.info("postgres.connection_budget", budget=budget)


async def run(settings: Settings, roles: set[str]) -> None:
    # Every PostgreSQL connection of this process (Kosh's and the event store library's)
    # names it in pg_stat_activity, so an operator can tell which instance holds a server's
    # connection slots. libpq reads the variable at each connect.
    os.environ.setdefault("PGAPPNAME", f"kosh-{'+'.join(sorted(roles))}-{os.getpid()}"[:63])
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    broker = None
    if settings.kafka_bootstrap is None:
        broker = LocalBroker(port=settings.broker_port).start()
        settings = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})
    stoppers: list[Callable[[], Awaitable[None]]] = []
    try:
        await asyncio.to_thread(prepare_topics, settings)
        kosh = bootstrap(settings)
        # The legal-act registry starts with the acts the Rules came with (idempotent).
        seeded = await asyncio.to_thread(kosh.app.seed_legal_acts)
        if seeded:
            log.info("legal_acts.seeded", acts=seeded)
        waiters: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait())]
        if roles & WRITERS and "publisher" not in roles:
            # The publisher runs elsewhere: tell it of each commit (publish_while_leader
            # wakes one in this process directly).
            bell = Bell(settings)
            kosh.after_commit.append(bell.ring)
            stoppers.append(_closer(bell.close))

        if "publisher" in roles:
            publisher_stop = threading.Event()
            thread = threading.Thread(
                target=publish_while_leader, args=(settings, kosh, publisher_stop),
                name="publisher-leader", daemon=True,
            )
            thread.start()

            async def stop_publisher() -> None:
                publisher_stop.set()
                await asyncio.to_thread(thread.join, 15)

            stoppers.append(stop_publisher)

        # Consumers join their groups at once: each join waits about a second for its
        # group to settle, and one after another they made `kosh up` take 4 s longer.
        starts: list[tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]] = []
        if "projections" in roles:
            kafka = projection_broker(settings)
            subscribe_projector(kafka, settings, build_projector(settings), build_mapper(settings))

            async def start_projections() -> None:
                await kafka.start()
                log.info("projections.started", group=settings.group_id("projections"),
                         topic=settings.events_topic)

            starts.append((start_projections, kafka.stop))

        if "processes" in roles:
            process = relocation_process_broker(settings, kosh.app, kosh.committed)

            async def start_processes() -> None:
                await process.start()
                log.info("processes.started", group=settings.group_id("relocation-process"))

            starts.append((start_processes, process.stop))

        if "intake" in roles:
            intake = IntakeConsumer(settings, kosh.app, store_database(settings), kosh.committed)
            starts.append((intake.start, intake.stop))

        if "projections" in roles:  # the audit trail is a projection of the store itself
            from consumers.audit import AuditConsumer

            audit = await asyncio.to_thread(AuditConsumer, settings)  # loads the persisted trail
            starts.append((audit.start, audit.stop))

        await start_together(starts, stoppers)

        if "api" in roles:
            stoppers.append(start_ops_monitor(kosh))
            server = _Server(uvicorn.Config(
                create_app(kosh), host=settings.api_host, port=settings.api_port,
                log_config=None, access_log=False, http=GatheringHttpToolsProtocol,
            ))
            server_task = asyncio.create_task(server.serve())
            waiters.append(server_task)

            async def stop_api() -> None:
                server.should_exit = True
                await asyncio.wait_for(server_task, 15)

            stoppers.append(stop_api)
            log.info("api.started", url=f"http://{settings.api_host}:{settings.api_port}",
                     docs=f"http://{settings.api_host}:{settings.api_port}/docs")

        if settings.database_url:
            await asyncio.to_thread(_check_connection_budget, settings)
        freeze_startup_heap()
        log.info("kosh.running", roles=sorted(roles), kafka=settings.kafka_bootstrap,
                 store=settings.database_url or str(settings.data_dir / "events.sqlite"))
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        log.info("kosh.stopping")
    finally:
        for stopper in reversed(stoppers):
            try:
                await stopper()
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                log.warning("kosh.stop_failed", error=repr(exc))
        if broker is not None:
            broker.stop()
        log.info("kosh.stopped")
