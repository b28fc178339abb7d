"""Issue 2: nothing accepted is lost or applied twice when the publisher dies or the
broker restarts empty."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from pathlib import Path

from api.bootstrap import bootstrap
from domain.commands import ApproveRegistration, SubmitRegistration
from domain.context import Actor, CommandContext
from infra.broker import LocalBroker
from infra.settings import Settings
from projections.projector import Delivered
from tests.conftest import make_settings
from tests.support.builders import registration_body
from tests.support.kafka_read import published_seqs
from tests.support.system import KoshProcess, wait_until


def ctx() -> CommandContext:
    return CommandContext(Actor("test", "registrar", "test"), dt.date.today(),
                          str(uuid.uuid4()), str(uuid.uuid4()))


def register_directly(settings: Settings, numbers: range) -> None:
    """Writes approved registrations straight into the store, as an API worker would."""
    app = bootstrap(settings).app
    for n in numbers:
        outcome = app.submit_registration(SubmitRegistration(**registration_body(n)), ctx())
        app.approve_registration(outcome.case_id, ApproveRegistration(), ctx())


def projection_state(settings: Settings) -> tuple[int, int, int]:
    """(store head, residents applied events, resident rows) read from the databases."""
    kosh = bootstrap(settings)
    head = kosh.app.recorder.max_notification_id() or 0
    applied = {s.projection: s.applied_count for s in kosh.projector.status()}
    return head, applied.get("residents", 0), kosh.residents.count()


def test_publisher_killed_repeatedly_mid_stream_loses_and_doubles_nothing(
    settings: Settings,
) -> None:
    settings = settings.model_copy(update={"publisher_batch": 5})
    projections = KoshProcess(settings, roles="projections", name="projections").start()
    writer = threading.Thread(target=register_directly, args=(settings, range(300)))
    writer.start()
    kills = 0
    try:
        while writer.is_alive() or kills < 3:
            publisher = KoshProcess(settings, roles="publisher", name="publisher").start()
            floor = kills * 40
            wait_until(lambda: projection_state(settings)[1] > floor, timeout=30,  # noqa: B023
                       what="publisher to make progress")
            publisher.kill()
            kills += 1
        writer.join()
        publisher = KoshProcess(settings, roles="publisher", name="publisher").start()
        # An approval stores the case's event and its person's (how many is the domain's).
        wait_until(lambda: (s := projection_state(settings))[1] == s[0], timeout=60,
                   what="every event to be applied")
        head, applied, residents = projection_state(settings)
        assert (applied, residents) == (head, 300)
        seqs = published_seqs(settings.kafka_bootstrap or "", settings.events_topic)
        assert set(seqs) == set(range(1, head + 1)), "every stored event was published"
        publisher.stop()
    finally:
        projections.stop()


def test_redelivered_events_are_applied_once(settings: Settings) -> None:
    register_directly(settings, range(3))
    kosh = bootstrap(settings)
    notifications = kosh.app.recorder.select_notifications(start=1, limit=100)
    batch = [Delivered(n.id, kosh.app.mapper.to_domain_event(n)) for n in notifications]
    assert kosh.projector.apply_batch(batch) == len(batch) * len(kosh.projector.projections)
    before = kosh.residents.by_district("Alatau") + kosh.residents.by_district("Almaly")
    assert kosh.projector.apply_batch(batch[::-1]) == 0
    assert kosh.projector.apply_batch(batch[2:4]) == 0
    assert kosh.residents.by_district("Alatau") + kosh.residents.by_district("Almaly") == before
    assert projection_state(settings) == (len(batch), len(batch), 3)


def test_broker_restarted_empty_recovers_complete_register_without_doubles(
    tmp_path: Path,
) -> None:
    broker = LocalBroker().start()
    settings = make_settings(tmp_path, broker.bootstrap)
    kosh = KoshProcess(settings).start()
    api = kosh.client(timeout=10)

    def register(n: int) -> None:
        case_id = api.post("/registrations", json=registration_body(n)).json()["case_id"]
        assert api.post(f"/registrations/{case_id}/approve").status_code == 200

    try:
        for n in range(10):
            register(n)
        wait_until(lambda: projection_state(settings)[2] == 10, timeout=20, what="10 residents")

        broker.stop()
        broker = LocalBroker(port=broker.port).start()  # a brand-new, empty cluster
        for n in range(10, 20):
            register(n)

        wait_until(lambda: (s := projection_state(settings))[1:] == (s[0], 20), timeout=60,
                   what="all 20 residents after the broker restart")
        head = projection_state(settings)[0]
        seqs = wait_until(
            lambda: (s := published_seqs(broker.bootstrap, settings.events_topic))
            and set(s) == set(range(1, head + 1)) and s,
            timeout=30, what="the store to be republished to the new broker",
        )
        assert set(seqs) == set(range(1, head + 1))
        assert kosh.stop() == 0
    finally:
        kosh.kill()
        broker.stop()
