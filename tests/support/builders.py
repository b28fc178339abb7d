"""Valid command bodies, varied by a serial number."""

from __future__ import annotations

import datetime as dt
from typing import Any

from domain.iin import InvalidIIN, make_iin

DISTRICTS = ("Alatau", "Almaly", "Auezov", "Bostandyk", "Zhetysu", "Medeu", "Nauryzbay",
             "Turksib")


def iin_for(n: int) -> str:
    """A distinct valid IIN per n (serials without a check digit are skipped)."""
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=n % 20000)
    serial = n // 20000 * 7 + 1
    while True:
        try:
            return make_iin(birth, "male" if n % 2 else "female", serial % 10000).value
        except InvalidIIN:
            serial += 1


def registration_body(n: int = 0, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "person": {"iin": iin_for(n), "family_name": f"Family{n}", "given_name": f"Given{n}"},
        "address": {"district": DISTRICTS[n % len(DISTRICTS)], "line": f"Abay ave {n}, flat 1"},
        "housing": {"type": "private", "useful_area_m2": 60.0, "occupants_after_registration": 2},
    }
    body.update(overrides)
    return body
