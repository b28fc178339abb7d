"""§10: state and akimat-leased housing need ≥ 15 m² of useful area per person."""

import pytest

from domain.errors import RuleViolation
from domain.housing import HousingType, check_area_norm


@pytest.mark.parametrize("housing", [HousingType.STATE, HousingType.AKIMAT_LEASED])
def test_s10_exactly_15m2_per_person_passes(housing: HousingType) -> None:
    check_area_norm(housing, 45.0, 3)


@pytest.mark.parametrize("housing", [HousingType.STATE, HousingType.AKIMAT_LEASED])
def test_s10_refuses_below_15m2_per_person_citing_s10(housing: HousingType) -> None:
    with pytest.raises(RuleViolation) as err:
        check_area_norm(housing, 44.99, 3)
    assert err.value.clause == "§10"
    assert "15 m²" in err.value.message and "14.99 m² per person" in err.value.message


def test_s10_does_not_apply_to_private_housing() -> None:
    check_area_norm(HousingType.PRIVATE, 10.0, 5)


def test_s10_counts_everyone_after_registration() -> None:
    check_area_norm(HousingType.STATE, 30.0, 2)
    with pytest.raises(RuleViolation):
        check_area_norm(HousingType.STATE, 30.0, 3)
