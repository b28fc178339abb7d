"""`kosh status`: every component with its lag and rate, read from the databases (the same
numbers as /metrics), once or live with --watch. No personal data is shown."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from api.bootstrap import Kosh, bootstrap, store_database
from consumers.ops_monitor import OpsMonitor
from infra.metrics import Snapshot
from infra.settings import Settings


def monitor_for(kosh: Kosh) -> OpsMonitor:
    """One monitor per wired Kosh, so its rate samples accumulate across calls."""
    monitor = getattr(kosh, "ops_monitor", None)
    if monitor is None:
        monitor = OpsMonitor(kosh.settings, store_database(kosh.settings), kosh.registers_db,
                             kosh.app.recorder, [p.name for p in kosh.projector.projections])
        monitor.owner = kosh  # type: ignore[attr-defined] # its store closes when collected
        kosh.ops_monitor = monitor  # type: ignore[attr-defined]
    return monitor


def start_ops_monitor(kosh: Kosh, interval_s: float = 5.0) -> Callable[[], Awaitable[None]]:
    """Runs the monitor's watch loop in a thread; returns its async stopper."""
    stop = threading.Event()
    thread = threading.Thread(target=monitor_for(kosh).run, args=(stop, interval_s),
                              name="ops-monitor", daemon=True)
    thread.start()

    async def stopper() -> None:
        stop.set()
        await asyncio.to_thread(thread.join, 5)

    return stopper


def _fmt(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def status_table(snapshot: Snapshot, max_lag: int) -> Table:
    at = dt.datetime.fromtimestamp(snapshot.at).strftime("%H:%M:%S")
    table = Table(title=f"Kosh at {at} · store head {snapshot.store_head:,}",
                  title_justify="left")
    for column, justify in (("component", "left"), ("group", "left"), ("position", "right"),
                            ("lag", "right"), ("events/s", "right"), ("failed", "right"),
                            ("last error", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for c in snapshot.components:
        lag_style = "red" if c.lag is not None and c.lag > max_lag else ""
        table.add_row(
            c.component, c.group or "–", _fmt(c.position), Text(_fmt(c.lag), style=lag_style),
            _fmt(c.rate, 1), Text(_fmt(c.failed), style="red" if c.failed else ""),
            c.last_error or "–",
        )
    return table


def render(monitor: OpsMonitor, max_lag: int) -> Any:
    try:
        return status_table(monitor.snapshot(), max_lag)
    except Exception as exc:  # noqa: BLE001 - shown, and --watch keeps trying
        return Group(Text(f"cannot read the store: {type(exc).__name__}", style="red"))


def run_status(settings: Settings, watch: bool, interval_s: float,
               console: Console | None = None) -> int:
    console = console or Console()
    kosh = bootstrap(settings)
    monitor = monitor_for(kosh)
    if not watch:
        monitor.snapshot()  # a first sample, so rates show over the short pause below
        time.sleep(min(interval_s, 1.0))
        console.print(render(monitor, settings.ready_max_lag))
        return 0
    try:
        if not console.is_terminal:
            # Piped to a file or a pager: one table per refresh, since nothing redraws.
            while True:
                console.print(render(monitor, settings.ready_max_lag))
                console.file.flush()
                time.sleep(interval_s)
        with Live(render(monitor, settings.ready_max_lag), console=console,
                  refresh_per_second=4) as live:
            while True:
                time.sleep(interval_s)
                live.update(render(monitor, settings.ready_max_lag))
    except KeyboardInterrupt:
        return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("status", help="lag, rate and failures of every component")
    p.add_argument("--watch", action="store_true", help="refresh live until Ctrl-C")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")

    def command(args: argparse.Namespace, settings: Settings) -> int:
        return run_status(settings, args.watch, args.interval)

    p.set_defaults(func=command)
