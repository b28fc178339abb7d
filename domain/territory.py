"""Territory designation (§5, §6): whether a territory is open for settling kandases
or settlers. It changes only as a consequence of an accepted §5 proposal, and keeps
every change with its effective date so "was T open for C on D" stays answerable."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import RuleViolation
from domain.ids import uuid5

# Deterministic ids: one aggregate per territory (and per quota), so a second
# establishment collides in the store instead of creating a twin.
KOSH_NAMESPACE = uuid.UUID("6f1f7a52-3c0e-5b8e-9a43-1d2c0b7e4a11")


class Territory(StrEnum):
    """The city as a whole, or one of its eight districts."""

    ALMATY = "Almaty"
    ALATAU = "Alatau"
    ALMALY = "Almaly"
    AUEZOV = "Auezov"
    BOSTANDYK = "Bostandyk"
    ZHETYSU = "Zhetysu"
    MEDEU = "Medeu"
    NAURYZBAY = "Nauryzbay"
    TURKSIB = "Turksib"


class SettlerCategory(StrEnum):
    """§3: the two categories that settle according to regional quotas (§6)."""

    KANDAS = "kandas"
    SETTLER = "settler"


CATEGORY_WORDS = {SettlerCategory.KANDAS: "kandases", SettlerCategory.SETTLER: "settlers"}


def designation_id(territory: str) -> UUID:
    return uuid5(KOSH_NAMESPACE, f"territory/{Territory(territory).value}")


class TerritoryDesignation(Aggregate):
    """Closed for every category until an accepted proposal includes the territory."""

    @staticmethod
    def create_id(territory: str) -> UUID:
        return designation_id(territory)

    @event("Created")
    def __init__(self, territory: str, meta: dict[str, Any]) -> None:
        self.territory = territory
        self.changes: list[dict[str, Any]] = []
        self.meta = meta

    def is_open(self, category: str, on: dt.date) -> bool:
        """The latest change for `category` effective on or before `on` decides."""
        state = False
        for change in self.changes:
            if change["category"] == category and change["effective_from"] <= on.isoformat():
                state = change["open"]
        return state

    def _latest(self, category: str) -> dict[str, Any] | None:
        mine = [c for c in self.changes if c["category"] == category]
        return mine[-1] if mine else None

    def check_change(self, category: str, open_: bool, effective_from: dt.date) -> None:
        """§5: an inclusion of an open territory (or exclusion of a closed one) changes
        nothing and is refused; so is a change dated before the last one."""
        words = CATEGORY_WORDS[SettlerCategory(category)]
        latest = self._latest(category)
        if latest is not None and latest["effective_from"] > effective_from.isoformat():
            raise RuleViolation(
                "§5",
                f"territory {self.territory} already has a change for settling {words} "
                f"effective {latest['effective_from']}; a change cannot take effect earlier, "
                f"on {effective_from.isoformat()}",
            )
        if self.is_open(category, effective_from) == open_:
            state = "open" if open_ else "closed"
            raise RuleViolation(
                "§5",
                f"territory {self.territory} is already {state} for settling {words} "
                f"on {effective_from.isoformat()}",
            )

    def change(
        self, category: str, open_: bool, effective_from: dt.date, proposal_id: str,
        meta: dict[str, Any],
    ) -> None:
        self.check_change(category, open_, effective_from)
        if open_:
            self._included(territory=self.territory, category=category,
                           effective_from=effective_from.isoformat(), proposal_id=proposal_id,
                           meta=meta)
        else:
            self._excluded(territory=self.territory, category=category,
                           effective_from=effective_from.isoformat(), proposal_id=proposal_id,
                           meta=meta)

    @event("Included")
    def _included(
        self, territory: str, category: str, effective_from: str, proposal_id: str,
        meta: dict[str, Any],
    ) -> None:
        self._record(category, True, effective_from, proposal_id, meta)

    @event("Excluded")
    def _excluded(
        self, territory: str, category: str, effective_from: str, proposal_id: str,
        meta: dict[str, Any],
    ) -> None:
        self._record(category, False, effective_from, proposal_id, meta)

    def _record(
        self, category: str, open_: bool, effective_from: str, proposal_id: str,
        meta: dict[str, Any],
    ) -> None:
        self.changes = [*self.changes, {"category": category, "open": open_,
                                        "effective_from": effective_from,
                                        "proposal_id": proposal_id}]
        self.meta = meta


def require_open(
    designation: TerritoryDesignation | None, territory: str, category: str, on: dt.date
) -> None:
    """§6: kandases and settlers settle only in a territory designated for them."""
    if designation is None or not designation.is_open(category, on):
        words = CATEGORY_WORDS[SettlerCategory(category)]
        raise RuleViolation(
            "§6",
            f"territory {territory} is not designated for settling {words} on "
            f"{on.isoformat()}; an accepted §5 proposal must include it first",
        )
