"""The fault suite's checker finds what it is there to find: a command stored twice or not
at all, an event of a refused command, a quota over its limit, a race won twice, an
arrival registered twice."""

from __future__ import annotations

from typing import Any

from tests.support.faults_check import (
    Stored,
    check_commands,
    check_process_manager,
    check_quotas,
    check_races,
)
from tests.support.load import Sent

QUOTA = "quota-1"


def event(
    seq: int,
    kind: str,
    correlation: str,
    originator: str = "case-1",
    actor: str = "load",
    **state: Any,
) -> Stored:
    domain = kind.split(".")[0].lower()
    return Stored(
        seq,
        f"domain.{domain}:{kind}",
        originator,
        {
            **state,
            "meta": {
                "correlation_id": correlation,
                "causation_id": correlation,
                "actor": {"id": actor},
            },
        },
    )


def sent(
    n: int,
    result: str,
    seqs: list[int],
    race: str | None = None,
    command_type: str = "approve_registration",
) -> Sent:
    return Sent(
        n, "http", command_type, f"c{n}", f"k{n}", None, race, result, sequence_numbers=seqs
    )


def test_a_command_executed_twice_or_lost_or_refused_with_events_is_reported() -> None:
    events = [
        event(1, "RegistrationCase.Submitted", "c1"),
        event(2, "RegistrationCase.Submitted", "c2"),
        event(3, "RegistrationCase.Submitted", "c2"),  # executed twice
        event(4, "RegistrationCase.Approved", "c4"),  # a refused command's event
        event(5, "RegistrationCase.Approved", "stranger"),
    ]
    ledger = [
        sent(1, "accepted", [1]),
        sent(2, "accepted", [2]),
        sent(3, "accepted", [9]),
        sent(4, "refused", []),
    ]
    problems = check_commands(ledger, events)
    assert any("#2" in p and "[2, 3]" in p for p in problems), problems
    assert any("#3" in p and "[]" in p for p in problems), problems
    assert any("#4 was refused" in p for p in problems), problems
    assert any("'stranger'" in p for p in problems), problems
    assert check_commands(ledger[:1], events[:1]) == []


def test_a_quota_over_its_limit_at_any_moment_is_reported_even_if_released_later() -> None:
    history = [
        event(1, "Quota.Established", "c1", QUOTA, limit=2),
        event(2, "Quota.PlacesReserved", "c2", QUOTA, case_id="a", count=2),
        event(3, "Quota.PlacesReserved", "c3", QUOTA, case_id="b", count=1),
        event(4, "Quota.PlacesReleased", "c4", QUOTA, case_id="a", count=2),
    ]
    problems, checked = check_quotas(history)
    assert checked == 4 and len(problems) == 1 and "seq 3" in problems[0]
    lowered = [*history[:2], event(3, "Quota.Adjusted", "c3", QUOTA, new_limit=1)]
    assert check_quotas(lowered)[0]
    assert check_quotas(history[:2])[0] == []


def test_a_race_won_twice_and_an_arrival_settled_twice_are_reported() -> None:
    race = [
        sent(1, "accepted", [1], "race-1"),
        sent(2, "accepted", [2], "race-1"),
        sent(3, "refused", [], "race-1"),
    ]
    assert check_races(race)
    assert check_races([race[0], race[2]]) == []
    arrived = [
        event(1, "RelocationCase.Arrived", "c1", "r", persons=2),
        event(2, "RelocationCase.MemberRegistered", "c1", "r", PROCESS, person="m0"),
        event(3, "RelocationCase.MemberRegistered", "c1", "r", PROCESS, person="m0"),
    ]
    problems = check_process_manager(arrived)
    assert any("m0 2 times" in p for p in problems), problems
    assert any("1 arrived person" in p for p in problems), problems


PROCESS = "relocation-process"
