"""Quotas (§3, §5, §6): one per kind, territory and period; reserved ≤ limit, always."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.context import Actor, CommandContext
from domain.errors import InvalidTransition, InvalidValue, RuleViolation
from domain.legal_acts import LegalActRegistry
from domain.quota import Quota, QuotaPeriod, quota_id
from domain.quota_commands import EstablishQuota

CTX = CommandContext(Actor("body-1", "authorised_body", "Ministry"), dt.date(2025, 12, 1),
                     "corr-1", "cmd-1")
META = CTX.meta(LegalActRegistry().basis("§6", CTX.effective_date))


def quota(limit: int = 5, kind: str = "kandas", period: str = "2026") -> Quota:
    return Quota(kind=kind, territory="Almaty", period=period, limit=limit, meta=META)


def test_s3_quota_id_is_the_same_for_the_same_kind_territory_and_period() -> None:
    assert quota().id == quota().id == quota_id("kandas", "Almaty", "2026")
    assert quota(kind="settler").id != quota().id
    assert quota(period="2026-2028").id != quota().id
    assert quota_id("kandas", "Medeu", "2026") != quota().id


def test_s3_quota_kinds_are_kandas_settler_and_foreign_labour() -> None:
    for kind in ("kandas", "settler", "foreign_labour"):
        EstablishQuota(kind=kind, territory="Almaty", period="2026", limit=1)
    with pytest.raises(ValidationError):
        EstablishQuota(kind="tourist", territory="Almaty", period="2026", limit=1)


@pytest.mark.parametrize("raw", ["2026", "2026-2027", "2026-2030"])
def test_s3_period_is_a_year_or_a_medium_term_range(raw: str) -> None:
    assert str(QuotaPeriod.parse(raw)) == raw


@pytest.mark.parametrize(("raw", "message"), [
    ("26", "must be a year (2026) or a range"),
    ("2026-26", "must be a year (2026) or a range"),
    ("2026-2026", "must end after it starts"),
    ("2028-2026", "must end after it starts"),
    ("2026-2031", "spans 6 years; a medium term is at most 5"),
    ("1999", "must lie within 2000-2100"),
])
def test_s3_period_refusals_say_what_is_wrong(raw: str, message: str) -> None:
    with pytest.raises(InvalidValue, match=re.escape(message)):
        QuotaPeriod.parse(raw)


def test_s3_limit_is_a_whole_number_from_zero() -> None:
    assert quota(limit=0).remaining == 0
    with pytest.raises(InvalidValue, match="whole number"):
        quota(limit=-1)
    with pytest.raises(ValidationError):
        EstablishQuota(kind="kandas", territory="Almaty", period="2026", limit=-1)


def test_s6_reservation_up_to_the_limit_is_accepted() -> None:
    q = quota(limit=5)
    q.reserve("case-a", 2, META)
    q.reserve("case-b", 3, META)
    assert (q.reserved, q.remaining) == (5, 0)
    events = [type(e).__name__ for e in q.collect_events()]
    assert events == ["Established", "PlacesReserved", "PlacesReserved"]


def test_s6_reservation_one_beyond_the_limit_is_refused_with_places_remaining() -> None:
    q = quota(limit=5)
    q.reserve("case-a", 2, META)
    with pytest.raises(RuleViolation) as refused:
        q.reserve("case-b", 4, META)
    assert refused.value.clause == "§6"
    assert refused.value.message == (
        "§6: the kandas quota for Almaty 2026 has 3 place(s) remaining of 5; 4 requested"
    )
    assert q.reserved == 2, "all or none: nothing of the refused request is reserved"


def test_s6_a_case_reserves_once_and_releases_exactly_what_it_holds() -> None:
    q = quota(limit=5)
    q.reserve("case-a", 3, META)
    with pytest.raises(InvalidTransition, match="already holds 3 place"):
        q.reserve("case-a", 1, META)
    q.release("case-a", META)
    assert q.reserved == 0
    with pytest.raises(InvalidTransition, match="holds no places"):
        q.release("case-a", META)


def test_s6_reservation_needs_at_least_one_place() -> None:
    with pytest.raises(InvalidValue, match="at least one place"):
        quota().reserve("case-a", 0, META)


def test_s5_adjustment_down_to_the_reserved_count_is_accepted() -> None:
    q = quota(limit=5)
    q.reserve("case-a", 3, META)
    q.adjust(3, "proposal-1", META)
    assert (q.limit, q.remaining) == (3, 0)
    adjusted = q.collect_events()[-1]
    assert (adjusted.new_limit, adjusted.delta, adjusted.proposal_id) == (3, -2, "proposal-1")


def test_s5_adjustment_below_the_reserved_count_is_refused() -> None:
    q = quota(limit=5)
    q.reserve("case-a", 3, META)
    with pytest.raises(RuleViolation) as refused:
        q.adjust(2, "proposal-1", META)
    assert refused.value.message == (
        "§5: the kandas quota for Almaty 2026 cannot be lowered to 2: 3 place(s) are already "
        "reserved"
    )


def test_s5_adjustment_to_the_same_limit_changes_nothing_and_is_refused() -> None:
    with pytest.raises(RuleViolation, match="already has the limit 5"):
        quota(limit=5).adjust(5, "proposal-1", META)


def test_s2_establishing_a_quota_takes_no_profile_of_people() -> None:
    with pytest.raises(ValidationError, match="extra"):
        EstablishQuota.model_validate({"kind": "kandas", "territory": "Almaty",
                                       "period": "2026", "limit": 5, "ethnicity": "x"})


operations = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(0, 9), st.integers(1, 6)),
        st.tuples(st.just("release"), st.integers(0, 9), st.just(0)),
        st.tuples(st.just("adjust"), st.integers(0, 30), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(limit=st.integers(0, 20), ops=operations)
def test_s6_no_interleaving_of_reserve_release_adjust_breaks_reserved_le_limit(
    limit: int, ops: list[tuple[str, int, int]],
) -> None:
    q = quota(limit=limit)
    for op, a, b in ops:
        try:
            if op == "reserve":
                q.reserve(f"case-{a}", b, META)
            elif op == "release":
                q.release(f"case-{a}", META)
            else:
                q.adjust(a, "proposal", META)
        except (RuleViolation, InvalidTransition):
            pass
        assert 0 <= q.reserved <= q.limit
    # Replaying the recorded events rebuilds the same, still valid, state.
    replayed = None
    for event in q.collect_events():
        replayed = event.mutate(replayed)
    assert replayed is not None
    assert (replayed.reserved, replayed.limit) == (q.reserved, q.limit)
    assert replayed.reserved <= replayed.limit
