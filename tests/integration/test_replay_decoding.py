"""The replay's fast decoding yields exactly the events the store's own mapper yields,
sealed personal fields opened included."""

from __future__ import annotations

from infra.application import KoshApplication
from infra.settings import Settings
from projections.replay import StoreReader, fast_mapper
from projections.replay_decoding import decode_row
from tests.support.builders import registration_body


def test_replay_decodes_sealed_and_plain_events_exactly_as_the_store(settings: Settings) -> None:
    from bench.workload import pairs_of, run_pairs
    from domain.commands import SubmitRegistration

    app = KoshApplication(settings)
    try:
        bodies = [registration_body(i) for i in range(6)]
        bodies[0]["person"]["patronymic"] = "Patronymic0"
        run_pairs(app, pairs_of([SubmitRegistration.model_validate(b) for b in bodies]), writers=3)
        fast = fast_mapper(app.mapper)
        notifications = list(StoreReader(app.recorder, app.mapper).notifications())
        assert any(b'"$sealed"' in n.state for n in notifications)
        assert any(b'"$sealed"' not in n.state for n in notifications)
        for n in notifications:
            slow, quick = app.mapper.to_domain_event(n), fast.to_domain_event(n)
            assert type(quick) is type(slow)
            assert quick.__dict__ == slow.__dict__
            # A row as the store's table holds it (the id as 32 hex digits) and as the
            # events topic carries it (the canonical text): the shortcut of decode_row.
            for text in (n.originator_id.hex, str(n.originator_id)):
                row = decode_row(fast, text, n.originator_version, n.topic, n.state)
                assert type(row) is type(slow)
                assert row.__dict__ == slow.__dict__
                assert list(row.__dict__) == list(slow.__dict__)  # same keys, same order
                assert str(row.originator_id) == str(slow.originator_id)
        submitted = next(
            e
            for n in notifications
            if (e := fast.to_domain_event(n)).__class__.__name__ == "Submitted"
        )
        assert submitted.person["family_name"].startswith("Family")  # opened, not sealed
    finally:
        app.close()
