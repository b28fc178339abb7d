"""Prometheus metrics: counters kept by this process, and gauges read from the databases at
scrape time (lag, positions, outcomes, dead letters), so every process reports the same
system-wide truth whichever process is scraped. Labels never carry personal data."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LOCAL = CollectorRegistry()

HTTP_LATENCY = Histogram(
    "kosh_http_request_duration_seconds", "HTTP request latency by route and status",
    ["method", "route", "status"], registry=LOCAL,
)
COMMANDS = Counter(
    "kosh_commands_processed", "Commands handled by this process, by channel and result",
    ["channel", "command_type", "result"], registry=LOCAL,
)
DEAD_LETTERS = Counter(
    "kosh_dead_letters_sent", "Records this process sent to the dead-letter topic",
    ["stage", "reason"], registry=LOCAL,
)
PARKED = Counter(
    "kosh_projection_parked", "Events this process parked because a projection failed on them",
    ["projection"], registry=LOCAL,
)
TRANSIENT_ERRORS = Counter(
    "kosh_consumer_transient_errors", "Batches retried after a transient error",
    ["component"], registry=LOCAL,
)


@dataclass(frozen=True)
class ComponentStatus:
    """One moving part, as operations see it. No personal data."""

    component: str  # publisher | intake | projection:<name>
    kind: str
    group: str  # consumer group, "" when none
    position: int  # events applied / published / commands recorded
    lag: int | None  # events behind the store head; None where it has no meaning
    rate: float | None  # per second, None until two samples exist
    failed: int  # parked events or dead letters
    last_error: str = ""  # a reason code or exception class
    last_error_at: float | None = None


@dataclass(frozen=True)
class Snapshot:
    at: float
    store_head: int
    components: list[ComponentStatus]
    commands: dict[tuple[str, str], int] = field(default_factory=dict)
    dead_letters: dict[tuple[str, str], int] = field(default_factory=dict)
    projection_max_seq: dict[str, int] = field(default_factory=dict)


class SnapshotCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        head = GaugeMetricFamily("kosh_store_head_sequence",
                                 "Highest sequence number in the event store")
        head.add_metric([], s.store_head)
        yield head
        labels = ["component", "kind", "group"]
        pos = GaugeMetricFamily("kosh_component_position",
                                "Events applied or published, or commands recorded", labels=labels)
        lag = GaugeMetricFamily("kosh_component_lag_events",
                                "Events behind the store head (store head minus applied)",
                                labels=labels)
        rate = GaugeMetricFamily("kosh_component_events_per_second",
                                 "Recent throughput", labels=labels)
        failed = GaugeMetricFamily("kosh_component_failed",
                                   "Parked events or dead letters", labels=labels)
        err = GaugeMetricFamily("kosh_component_last_error_timestamp_seconds",
                                "When the last failure happened, by its reason code",
                                labels=[*labels, "reason"])
        for c in s.components:
            values = [c.component, c.kind, c.group]
            pos.add_metric(values, c.position)
            failed.add_metric(values, c.failed)
            if c.lag is not None:
                lag.add_metric(values, c.lag)
            if c.rate is not None:
                rate.add_metric(values, c.rate)
            if c.last_error_at is not None:
                err.add_metric([*values, c.last_error], c.last_error_at)
        yield from (pos, lag, rate, failed, err)
        applied = GaugeMetricFamily("kosh_projection_applied_sequence",
                                    "Highest sequence number a projection applied",
                                    labels=["projection"])
        for name, seq in sorted(s.projection_max_seq.items()):
            applied.add_metric([name], seq)
        yield applied
        recorded = GaugeMetricFamily("kosh_command_outcomes",
                                     "Recorded command outcomes (all processes)",
                                     labels=["command_type", "result"])
        for (ctype, result), n in sorted(s.commands.items()):
            recorded.add_metric([ctype, result], n)
        yield recorded
        dead = GaugeMetricFamily("kosh_dead_letters", "Dead letters recorded (all processes)",
                                 labels=["stage", "reason"])
        for (stage, reason), n in sorted(s.dead_letters.items()):
            dead.add_metric([stage, reason], n)
        yield dead


def render(snapshot: Snapshot | None, extra: Iterable[Collector] = ()) -> bytes:
    """Prometheus text: this process's counters, then the system-wide gauges."""
    registry = CollectorRegistry()
    if snapshot is not None:
        registry.register(SnapshotCollector(snapshot))
    for collector in extra:
        registry.register(collector)
    return generate_latest(LOCAL) + generate_latest(registry)
