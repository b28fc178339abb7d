"""§6 invariant under concurrency: four OS processes, each with its own application on
the same store, race 1,000 approvals (one person each) against a quota of 500 places."""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter

from infra.application import KoshApplication
from infra.settings import Settings
from tests.support.quota_race import apply_one_person_each, approve_all, open_almaty_for_kandases
from tests.support.system import KoshProcess, wait_until

RACERS = 4
REQUESTS = 1000
LIMIT = 500


def test_s6_four_processes_racing_1000_approvals_reserve_exactly_500_places(
    store_settings: Settings,
) -> None:
    app = KoshApplication(store_settings)
    quota_id = open_almaty_for_kandases(app, LIMIT)
    case_ids = apply_one_person_each(app, REQUESTS)
    app.close()

    with mp.get_context("spawn").Pool(RACERS) as pool:
        shares = [case_ids[i::RACERS] for i in range(RACERS)]
        results = pool.starmap(approve_all, [(store_settings.model_dump_json(), s)
                                             for s in shares])
    outcomes: Counter[str] = sum((Counter(r) for r in results), Counter())
    # Every request either reserved its place or was refused with the places remaining.
    assert outcomes == {"approved": LIMIT, "refused: quota full": REQUESTS - LIMIT}

    app = KoshApplication(store_settings)
    quota = app.find_quota(quota_id)
    assert quota is not None and (quota.reserved, quota.limit) == (LIMIT, LIMIT)
    app.close()

    system = KoshProcess(store_settings).start()
    try:
        api = system.client(timeout=10)

        def approved() -> list[object]:
            return api.get("/relocations", params={"status": "approved", "limit": 1000}).json()

        def ledger() -> dict[str, int]:
            return api.get(f"/quotas/{quota_id}").json()  # type: ignore[no-any-return]

        # The approval and its reservation are one save but may reach two batches.
        wait_until(lambda: len(approved()) == LIMIT and ledger()["reserved"] == LIMIT,
                   timeout=90, what="the registers to catch up with the store")
        row = ledger()
        assert (row["limit"], row["reserved"], row["remaining"]) == (LIMIT, LIMIT, 0)
        waiting = api.get("/relocations", params={"status": "applied", "limit": 1000}).json()
        assert len(waiting) == REQUESTS - LIMIT
    finally:
        assert system.stop() == 0, system.log()[-2000:]
