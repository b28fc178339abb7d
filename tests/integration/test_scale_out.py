"""Issue 9: many stateless instances against one PostgreSQL and one Kafka cluster."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from api.bootstrap import Kosh, bootstrap
from api.runner import ROLES
from infra.broker import free_port
from infra.settings import Settings
from tests.conftest import _drop_schema, make_settings
from tests.support.auth import token
from tests.support.builders import iin_for, registration_body
from tests.support.system import KoshProcess, wait_until

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_settings(tmp_path: Path, kafka_bootstrap: str, postgres_url: str) -> Iterator[Settings]:
    schema = f"kosh_test_{uuid.uuid4().hex[:10]}"
    yield make_settings(tmp_path, kafka_bootstrap, database_url=postgres_url,
                        database_schema=schema)
    _drop_schema(schema)


def start_all(processes: list[KoshProcess]) -> list[KoshProcess]:
    started: list[KoshProcess] = []
    try:
        for p in processes:
            started.append(p.start())
    except BaseException:
        for p in started:
            p.kill()
        raise
    return started


def stored_seqs(kosh: Kosh) -> list[int]:
    # PostgreSQL leaves gaps where a conflicting insert was rolled back: list, don't count.
    return [n.id for n in kosh.app.recorder.select_notifications(start=1, limit=10**6)]


def store_state(kosh: Kosh) -> tuple[int, int, int]:
    """(events stored, events applied by the residents projection, resident rows)."""
    applied = {s.projection: s.applied_count for s in kosh.projector.status()}
    return len(stored_seqs(kosh)), applied.get("residents", 0), kosh.residents.count()


def log_events(process: KoshProcess, name: str) -> list[dict[str, Any]]:
    out = []
    for line in process.log().splitlines():
        if f'"{name}"' in line:
            try:
                out.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
    return out


def envelope(command_id: str, command_type: str, **fields: Any) -> bytes:
    return orjson.dumps({"command_id": command_id, "command_type": command_type,
                         **fields})


class ResultsReader:
    """Reads the results topic from the beginning, keeping the latest result per command."""

    def __init__(self, settings: Settings) -> None:
        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                                      group_id=None, enable_auto_commit=False)
        topic = settings.results_topic
        self.consumer.assign([TopicPartition(topic, p)
                              for p in self.consumer.partitions_for_topic(topic) or ()])
        self.consumer.seek_to_beginning()
        self.results: dict[str, dict[str, Any]] = {}

    def wait_for(self, command_ids: set[str]) -> dict[str, dict[str, Any]]:
        def arrived() -> bool:
            for records in self.consumer.poll(timeout_ms=200).values():
                for r in records:
                    self.results[r.key.decode()] = orjson.loads(r.value)
            return command_ids <= set(self.results)

        wait_until(arrived, timeout=60, every=0, what=f"{len(command_ids)} command results")
        return {c: self.results[c] for c in command_ids}


def commands_via_intake(settings: Settings, numbers: range) -> list[int]:
    """Submits over Kafka (each command sent twice: a repeat changes nothing), then sends two
    different approvals of each case at once; returns the accepted sequence numbers."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    topic = settings.commands_topic
    auth = [("authorization", f"Bearer {token(settings, 'registrar')}".encode())]
    reader = ResultsReader(settings)
    try:
        for _ in range(2):
            for n in numbers:
                producer.send(topic, key=f"sub-{n}".encode(), value=envelope(
                    f"sub-{n}", "submit_registration", payload=registration_body(n)),
                    headers=auth)
        producer.flush(30)
        submitted = reader.wait_for({f"sub-{n}" for n in numbers})
        assert {r["result"] for r in submitted.values()} == {"accepted"}, submitted
        for n in numbers:
            for racer in ("a", "b"):
                producer.send(topic, key=f"app-{n}-{racer}".encode(), value=envelope(
                    f"app-{n}-{racer}", "approve_registration",
                    case_id=submitted[f"sub-{n}"]["case_id"]), headers=auth)
        producer.flush(30)
        approvals = reader.wait_for({f"app-{n}-{r}" for n in numbers for r in "ab"})
        for n in numbers:
            outcomes = sorted(approvals[f"app-{n}-{r}"]["result"] for r in "ab")
            assert outcomes == ["accepted", "refused"], [approvals[f"app-{n}-{r}"] for r in "ab"]
        return [seq for result in [*submitted.values(), *approvals.values()]
                if result["result"] == "accepted" for seq in result["sequence_numbers"]]
    finally:
        producer.close()
        reader.consumer.close()


def post_until_answered(client: Any, path: str, key: str, **kwargs: Any) -> Any:
    """POSTs as a client of the API must: a 503 (the store was busy or away: nothing was
    decided, or the repeat finds what was) is sent again under the same Idempotency-Key."""
    for _ in range(10):
        reply = client.post(path, headers={"Idempotency-Key": key}, **kwargs)
        if reply.status_code != 503:
            return reply
        time.sleep(float(reply.headers.get("Retry-After", "1")))
    return reply


class ConnectionsSeen(threading.Thread):
    """The most PostgreSQL connections each Kosh process held at once, by the name its
    connections carry (kosh-<roles>-<pid>), read off pg_stat_activity while the test runs."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.most = url, Counter[str]()
        self._done = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._done.wait(0.1):
                for name, n in conn.execute(
                        "SELECT application_name, count(*) FROM pg_stat_activity "
                        "WHERE application_name LIKE 'kosh-%' GROUP BY 1").fetchall():
                    self.most[name] = max(self.most[name], int(n))

    def of(self, pid: int) -> int:
        return max((n for name, n in self.most.items() if name.endswith(f"-{pid}")), default=0)

    def stop(self) -> None:
        self._done.set()
        self.join()


def test_three_api_and_two_intake_instances_racing_store_each_accepted_command_once(
    pg_settings: Settings,
) -> None:
    apis = [KoshProcess(pg_settings.model_copy(update={"api_port": free_port()}),
                        roles="api", name=f"api-{i}") for i in range(3)]
    with_intake = "intake" in ROLES
    intakes = [KoshProcess(pg_settings, roles="intake", name=f"intake-{i}")
               for i in range(2 if with_intake else 0)]
    back = KoshProcess(pg_settings, roles="publisher,projections", name="back")
    assert pg_settings.database_url is not None
    seen = ConnectionsSeen(pg_settings.database_url)
    seen.start()
    processes = start_all([*apis, *intakes, back])
    kosh = bootstrap(pg_settings)
    seeded = stored_seqs(kosh)  # the legal-act registry, stored at start-up
    clients = [p.client(timeout=30) for p in apis]
    try:
        def submit_then_race_approvals(n: int) -> list[int]:
            """Submits via one instance, then approves the same case via all three at once:
            exactly one approval is accepted, the others are refused as conflicts."""
            submitted = post_until_answered(clients[n % 3], "/registrations", f"submit-{n}",
                                            json=registration_body(n))
            assert submitted.status_code == 201, submitted.text
            case_id = submitted.json()["case_id"]
            with ThreadPoolExecutor(max_workers=3) as racers:
                replies = list(racers.map(
                    lambda ic: post_until_answered(ic[1], f"/registrations/{case_id}/approve",
                                                   f"approve-{n}-{ic[0]}"),
                    enumerate(clients)))
            statuses = sorted(r.status_code for r in replies)
            assert statuses == [200, 409, 409], [r.text for r in replies]
            winner = next(r for r in replies if r.status_code == 200)
            return submitted.json()["sequence_numbers"] + winner.json()["sequence_numbers"]

        with ThreadPoolExecutor(max_workers=6) as pool:
            via_kafka = pool.submit(commands_via_intake, pg_settings, range(100, 130)) \
                if with_intake else None
            accepted = list(itertools.chain.from_iterable(
                pool.map(submit_then_race_approvals, range(60))))
            accepted += via_kafka.result() if via_kafka else []
        cases = 60 + (30 if with_intake else 0)

        # Every accepted command's events are in the store exactly once, and nothing else.
        assert Counter(accepted).most_common(1)[0][1] == 1
        assert sorted(accepted) == [s for s in stored_seqs(kosh) if s not in seeded]
        wait_until(lambda: (s := store_state(kosh))[1:] == (s[0], cases), timeout=30,
                   what="every approved registration in the residents register")
        any_api = apis[0].client(timeout=10)
        for n in (0, 31, 59, *((100, 129) if with_intake else ())):
            assert any_api.get(f"/residents/{iin_for(n)}").status_code == 200

        # Each process kept within its connection budget, however many threads it ran,
        # and every one of them is named on the server.
        seen.stop()
        budget = pg_settings.database_pool_size + pg_settings.database_store_pool_size
        held = {p.log_path.stem: seen.of(p.process.pid) for p in processes if p.process}
        assert all(0 < n <= budget for n in held.values()), (held, seen.most)
    finally:
        seen.stop()
        for p in processes:
            p.kill()


def test_two_projection_instances_in_one_group_share_the_partitions_and_apply_once(
    pg_settings: Settings,
) -> None:
    settings = pg_settings.model_copy(update={"events_partitions": 4})
    debug = settings.model_copy(update={"log_level": "DEBUG"})
    consumers = [KoshProcess(debug, roles="projections", name=f"projections-{i}")
                 for i in range(2)]
    processes = start_all([*consumers, KoshProcess(settings, roles="api,publisher", name="app")])
    api = processes[-1].client(timeout=10)
    kosh = bootstrap(settings)

    def applied_by(p: KoshProcess) -> int:
        return sum(e.get("applied", 0) for e in log_events(p, "projection.batch_applied"))

    def register(n: int) -> None:
        case_id = api.post("/registrations", json=registration_body(n)).json()["case_id"]
        assert api.post(f"/registrations/{case_id}/approve").status_code == 200

    try:
        # Waves until the group has balanced: then each member owns some partitions.
        n = 0
        for _ in range(30):
            for _ in range(20):
                register(n)
                n += 1
            wait_until(lambda: (s := store_state(kosh))[1:] == (s[0], n), timeout=30,  # noqa: B023
                       what="the wave to be applied")
            if all(applied_by(p) > 0 for p in consumers):
                break
        assert all(applied_by(p) > 0 for p in consumers), "both instances took a share"
        head, applied, residents = store_state(kosh)
        assert (applied, residents) == (head, n)
        # Redelivery on rebalance is skipped by sequence number: nothing applied twice
        # (the log counts (projection, event) pairs, every register sees every event).
        pairs = head * len(kosh.projector.projections)
        assert sum(applied_by(p) for p in consumers) == pairs
    finally:
        for p in processes:
            p.kill()
