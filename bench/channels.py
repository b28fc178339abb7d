"""Commands per second over HTTP and over the Kafka command intake, each against the
write path alone (measured earlier in the same run), with `kosh up` as its own process."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from api.runner import prepare_topics
from bench.env import BenchEnv
from bench.http_client import Pool
from bench.report import Results
from bench.workload import bodies
from infra.auth import issue_token
from infra.broker import free_port
from infra.settings import Settings
from infra.topics import kafka_client_config
from tests.support.system import KoshProcess

CLIENTS = 32  # HTTP requests in flight at once


def bearer(settings: Settings) -> str:
    return "Bearer " + issue_token(settings, "bench", ["registrar"], "bench")


async def _http_pairs(base_urls: list[str], auth: str, payloads: list[dict[str, Any]]) -> float:
    """Seconds for CLIENTS clients, shared out over `base_urls` (API processes), to submit
    and approve every payload."""
    pools = [Pool(url, {"Authorization": auth}, CLIENTS) for url in base_urls]
    todo = list(reversed(payloads))

    async def client(pool: Pool) -> None:
        while todo:
            case = await pool.request("POST", "/registrations", todo.pop())
            await pool.request("POST", f"/registrations/{case['case_id']}/approve", {})

    started = time.perf_counter()
    try:
        await asyncio.gather(*(client(pools[i % len(pools)]) for i in range(CLIENTS)))
        return time.perf_counter() - started
    finally:
        for pool in pools:
            await pool.close()


def _http_run(settings: Settings, processes: int, pairs: int) -> float:
    """`kosh up --role api` `processes` times on one store, each on a port of its own (as
    API instances behind a load balancer); seconds for the pairs."""
    apis: list[KoshProcess] = []
    try:
        for i in range(processes):  # one at a time: the first creates the tables
            port = settings.api_port if i == 0 else free_port()
            apis.append(KoshProcess(settings.model_copy(update={"api_port": port}), "api",
                                    name=f"api{i}").start(timeout=60))
        urls, auth = [a.base_url for a in apis], bearer(settings)
        asyncio.run(_http_pairs(urls, auth, bodies(20, offset=900_000)))
        return asyncio.run(_http_pairs(urls, auth, bodies(pairs)))
    finally:
        for api in apis:
            api.stop()


def http(env: BenchEnv, results: Results) -> None:
    pairs = 100 if env.quick else 2000
    seconds = _http_run(env.settings("http"), 1, pairs)
    results.add(
        "http_cmds_per_s",
        2 * pairs / seconds,
        "commands/s",
        f"commands over HTTP ({CLIENTS} clients, kosh up --role api)",
        baseline="write_sqlite_cmds_per_s",
    )
    if env.quick:
        return
    # Python runs one thread of a process at a time: a second API instance is how the
    # second core serves requests, as a second writer process is for the write path.
    count = max(2, min(os.cpu_count() or 2, 4))
    seconds = _http_run(env.settings("httpprocs"), count, pairs)
    results.add(
        "http_procs_cmds_per_s",
        2 * pairs / seconds,
        "commands/s",
        f"commands over HTTP ({CLIENTS} clients), {count} API processes on one store (the "
        "load generator runs on the same cores)",
        baseline="write_sqlite_procs_cmds_per_s",
    )


def _envelope(
    command_type: str, payload: dict[str, Any], case_id: str | None = None
) -> tuple[str, bytes]:
    command_id = uuid.uuid4().hex
    return command_id, orjson.dumps(
        {
            "command_id": command_id,
            "command_type": command_type,
            "case_id": case_id,
            "payload": payload,
        }
    )


def _kafka_pairs(settings: Settings, payloads: list[dict[str, Any]], timeout: float) -> float:
    """Sends every submission at once, each approval as soon as its submission's result
    arrives; seconds until the last approval's result."""
    headers = [("authorization", bearer(settings).encode())]
    producer = KafkaProducer(**kafka_client_config(settings), linger_ms=5, acks="all")
    # A short fetch wait: a broker that does not answer a waiting fetch when records
    # arrive (tansu) would otherwise hold each result up to the 500 ms default.
    consumer = KafkaConsumer(
        **kafka_client_config(settings),
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
    )
    submitted: set[str] = set()
    approving: set[str] = set()

    def send(command_type: str, payload: dict[str, Any], case_id: str | None = None) -> str:
        command_id, value = _envelope(command_type, payload, case_id)
        producer.send(settings.commands_topic, value, headers=headers)
        return command_id

    try:
        partitions = consumer.partitions_for_topic(settings.results_topic) or set()
        consumer.assign([TopicPartition(settings.results_topic, p) for p in partitions])
        consumer.seek_to_beginning()  # results of earlier rounds are skipped by command id
        started = time.perf_counter()
        submitted.update(send("submit_registration", p) for p in payloads)
        producer.flush()
        deadline = time.monotonic() + timeout
        while submitted or approving:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(submitted) + len(approving)} commands got no result")
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    result = orjson.loads(record.value)
                    cid = result["command_id"]
                    if cid not in submitted and cid not in approving:
                        continue
                    if result["result"] != "accepted":
                        raise RuntimeError(f"the intake did not accept a command: {result}")
                    if cid in submitted:
                        submitted.discard(cid)
                        approving.add(send("approve_registration", {}, result["case_id"]))
                    else:
                        approving.discard(cid)
            producer.flush()
        return time.perf_counter() - started
    finally:
        producer.close()
        consumer.close()


def kafka_intake(env: BenchEnv, results: Results) -> None:
    pairs = 100 if env.quick else 2000
    settings = env.settings("intake")
    prepare_topics(settings)
    kosh = KoshProcess(settings, "intake").start(timeout=60)
    try:
        _kafka_pairs(settings, bodies(20, offset=900_000), timeout=60)  # joins the group
        seconds = _kafka_pairs(settings, bodies(pairs), timeout=300)
    finally:
        kosh.stop()
    results.add(
        "kafka_intake_cmds_per_s",
        2 * pairs / seconds,
        "commands/s",
        "commands over the Kafka command intake (kosh up --role intake)",
        baseline="write_sqlite_cmds_per_s",
    )


def run(env: BenchEnv, results: Results) -> None:
    http(env, results)
    kafka_intake(env, results)
