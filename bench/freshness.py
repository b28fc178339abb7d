"""End-to-end freshness: from a command's HTTP reply to its event applied in the register,
at a fixed offered rate, with the API, the publisher and the projections of `kosh up`.

The load is open-loop (a command is sent on schedule whether or not earlier ones were
answered), so a slow system shows as late replies and stale registers, not as a lower
rate. The register is watched in its own database: the projector records each sequence
number it applied in the same transaction as the register change."""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import threading
import time
from typing import Any

import httpx

from bench import profiling
from bench.channels import bearer
from bench.env import BenchEnv
from bench.http_client import Pool
from bench.report import Results
from bench.workload import bodies
from tests.support.system import KoshProcess, wait_until

TARGET_P99_MS = 250
RATE = 500
LOW_RATE = 100  # a rate the API keeps up with, for the pipeline's own latency
# Enough for every command in flight at the offered rate while replies take up to ~1 s.
CONNECTIONS = 500
# One process per role, as deploy/ runs them: the API's CPU is then its own, and a
# saturated API cannot starve the publisher or the projections.
ROLES = ("api", "publisher", "projections")


class RegisterWatch:
    """Notes when each awaited sequence number shows up in the residents register."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.awaited: dict[int, float] = {}  # seq → when its command was accepted
        self.seen: dict[int, float] = {}  # seq → when it was visible
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def expect(self, seq: int, accepted_at: float) -> None:
        with self.lock:
            self.awaited[seq] = accepted_at

    def _run(self) -> None:
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        while not self.stop.is_set():
            with self.lock:
                waiting = [s for s in self.awaited if s not in self.seen]
            if waiting:
                rows = conn.execute(
                    "SELECT seq FROM projection_applied WHERE projection = 'residents' "
                    "AND seq >= ?",
                    (min(waiting),),
                ).fetchall()
                now = time.monotonic()
                with self.lock:
                    for (seq,) in rows:
                        if seq in self.awaited and seq not in self.seen:
                            self.seen[seq] = now
            time.sleep(0.002)
        conn.close()

    def lags_ms(self) -> list[float]:
        with self.lock:
            return [
                max(0.0, self.seen[s] - a) * 1000 for s, a in self.awaited.items() if s in self.seen
            ]


async def _offer(
    base_url: str, auth: str, payloads: list[dict[str, Any]], rate: float, watch: RegisterWatch
) -> float:
    """Sends at `rate` commands/s; returns the rate the replies came back at."""
    pool = Pool(base_url, {"Authorization": auth}, CONNECTIONS)

    async def one(body: dict[str, Any]) -> None:
        reply = await pool.request("POST", "/registrations", body)
        watch.expect(max(reply["sequence_numbers"]), time.monotonic())

    started = time.monotonic()
    tasks = []
    try:
        for i, body in enumerate(payloads):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body)))
        await asyncio.gather(*tasks)
        return len(payloads) / (time.monotonic() - started)
    finally:
        await pool.close()


def hop_latency(settings: Any, fetch_max_wait_ms: int | None) -> float:
    """p50 ms from a produce acknowledged to a waiting aiokafka consumer holding it, with
    the consumer's fetch wait as given (None: the client's default, as the projection
    consumer runs it)."""
    from aiokafka import AIOKafkaConsumer
    from kafka import KafkaProducer

    from api.runner import prepare_topics
    from infra.topics import kafka_client_config

    prepare_topics(settings)
    topic = settings.events_topic
    producer = KafkaProducer(**kafka_client_config(settings), acks="all", linger_ms=0)
    waits = {} if fetch_max_wait_ms is None else {"fetch_max_wait_ms": fetch_max_wait_ms}

    async def measure() -> list[float]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=None,
            auto_offset_reset="latest",
            **waits,
        )
        await consumer.start()
        lags = []
        try:
            await asyncio.sleep(0.5)
            for i in range(30):
                sent = time.monotonic()
                await asyncio.to_thread(lambda: producer.send(topic, b"hop").get(10))
                while not await consumer.getmany(timeout_ms=2000):
                    pass
                lags.append((time.monotonic() - sent) * 1000)
                await asyncio.sleep(0.03 + 0.01 * (i % 5))
        finally:
            await consumer.stop()
        return lags

    try:
        return statistics.median(asyncio.run(measure()))
    finally:
        producer.close()


def _round(
    kosh: KoshProcess, watch: RegisterWatch, auth: str, rate: float, seconds: float, offset: int
) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, replied commands/s) of `seconds` of load offered at `rate`."""
    with watch.lock:
        watch.awaited.clear()
        watch.seen.clear()
    payloads = bodies(int(rate * seconds), offset)
    replied = asyncio.run(_offer(kosh.base_url, auth, payloads, rate, watch))
    wait_until(
        lambda: len(watch.lags_ms()) == len(payloads),
        timeout=120,
        what="every command visible in the register",
    )
    cuts = statistics.quantiles(watch.lags_ms(), n=100)
    return cuts[49], cuts[98], replied


def run(env: BenchEnv, results: Results) -> None:
    seconds = 3 if env.quick else 10
    settings = env.settings("fresh")
    kosh = KoshProcess(settings, "api").start(timeout=60)
    others = [KoshProcess(settings, role, name=role).start(timeout=60) for role in ROLES[1:]]
    watch = RegisterWatch(str(settings.data_dir / "registers.sqlite"))
    watch.thread.start()
    try:
        auth = bearer(settings)
        _round(kosh, watch, auth, 50, 0.4, offset=900_000)  # the consumer group joins
        p50, p99, replied = _round(kosh, watch, auth, RATE, seconds, offset=0)
        low = _round(kosh, watch, auth, LOW_RATE, seconds, offset=100_000)
    finally:
        watch.stop.set()
        watch.thread.join(5)
        kosh.stop()
        for other in others:
            other.stop()
    hop_default = hop_latency(env.settings("hop"), None)
    hop_short = hop_latency(env.settings("hopshort"), 10)
    results.add(
        "kafka_hop_default_p50_ms",
        hop_default,
        "ms",
        "produce → consumer, aiokafka's default fetch wait (a consumer left at the default)",
    )
    results.add(
        "kafka_hop_short_wait_p50_ms", hop_short, "ms", "produce → consumer, fetch_max_wait_ms=10"
    )
    results.add("freshness_offered_cmds_per_s", RATE, "commands/s", "offered rate")
    results.add(
        "freshness_replied_cmds_per_s",
        replied,
        "commands/s",
        f"rate the replies came back at, {RATE}/s offered",
    )
    results.add("freshness_p50_ms", p50, "ms", f"freshness p50 at {RATE}/s offered")
    results.add("freshness_p99_ms", p99, "ms", f"freshness p99 at {RATE}/s offered")
    results.add(
        f"freshness_at_{LOW_RATE}_p50_ms",
        low[0],
        "ms",
        f"freshness p50 at {LOW_RATE}/s offered ({low[2]:.0f}/s replied)",
    )
    results.add(
        f"freshness_at_{LOW_RATE}_p99_ms", low[1], "ms", f"freshness p99 at {LOW_RATE}/s offered"
    )
    met = p99 <= TARGET_P99_MS
    reasons = []
    if replied < RATE * 0.95:
        reasons.append(
            f"the API answered only {replied:.0f} of the {RATE} commands/s offered (the "
            "profile below is of the API under this load)"
        )
    if hop_default > 2 * hop_short + 20:
        reasons.append(
            f"on this broker a consumer sees a new record only when its fetch wait "
            f"expires: {hop_default:.0f} ms p50 per hop with the client's default wait, "
            f"{hop_short:.0f} ms with fetch_max_wait_ms=10; a consumer left at the default "
            f"pays that on every hop (at {LOW_RATE}/s, which the API keeps up with, "
            f"freshness p50 is {low[0]:.0f} ms and p99 {low[1]:.0f} ms)"
        )
    why = "; ".join(reasons)
    results.target(
        f"freshness p99 ≤ {TARGET_P99_MS} ms at {RATE} commands/s",
        met,
        f"p99 {p99:.0f} ms, p50 {p50:.0f} ms ({replied:.0f} commands/s replied)",
        why=why,
        profile_job=None
        if met or env.quick
        else lambda: _profile(env, env.root / "freshness-gil.pyspy"),
    )


def _profile(env: BenchEnv, out: Any) -> list[str]:
    """The same load against the API (the process that saturates) under py-spy."""
    import sys

    settings = env.settings("freshprof")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    proc = profiling.record(
        [sys.executable, "-m", "api.cli", "up", "--role", "api"],
        out,
        env=profiling.settings_env(settings),
        gil=True,
    )
    if proc is None:
        return ["(py-spy is not installed)"]
    base_url = f"http://{settings.api_host}:{settings.api_port}"
    try:
        wait_until(
            lambda: httpx.get(base_url + "/healthz", timeout=1).status_code == 200,
            timeout=60,
            what="kosh up under py-spy",
        )
        watch = RegisterWatch(str(settings.data_dir / "registers.sqlite"))
        asyncio.run(
            _offer(base_url, bearer(settings), bodies(RATE * 8, offset=500_000), RATE, watch)
        )
    finally:
        profiling.stop(proc)
    summary = profiling.summarise(out)
    return ["kosh up --role api under the same load, the thread holding the GIL (the CPU):"] + [
        "  " + line for line in summary
    ]
