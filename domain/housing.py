"""§10: registration in state housing, or in private housing leased by the akimat,
needs at least 15 m² of useful area per person."""

from __future__ import annotations

import math
from enum import StrEnum

from domain.errors import RuleViolation

MIN_AREA_PER_PERSON_M2 = 15.0


class HousingType(StrEnum):
    PRIVATE = "private"
    STATE = "state"
    AKIMAT_LEASED = "akimat_leased"


NORM_APPLIES_TO = frozenset({HousingType.STATE, HousingType.AKIMAT_LEASED})


def check_area_norm(housing_type: HousingType, useful_area_m2: float, occupants: int) -> None:
    """Raises a §10 refusal when the home is too small for everyone registered after
    the decision; private housing is not subject to the norm."""
    if housing_type not in NORM_APPLIES_TO:
        return
    if occupants < 1:
        raise RuleViolation("§10", "at least one occupant must be registered")
    per_person = useful_area_m2 / occupants
    if per_person < MIN_AREA_PER_PERSON_M2:
        raise RuleViolation(
            "§10",
            f"{housing_type.value} housing needs at least {MIN_AREA_PER_PERSON_M2:g} m² of useful "
            f"area per person; {useful_area_m2:g} m² for {occupants} occupants is "
            # Rounded down: a refusal must never print "15.00" for 14.997.
            f"{math.floor(per_person * 100) / 100:.2f} m² per person",
        )
