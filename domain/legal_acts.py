"""Legal acts and which edition of the Rules is in force on a date.

An act enters into force ten calendar days after its first official publication
unless it states otherwise; the publication date may be entered later, and until
it is, the act is not in force.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from domain.errors import NotInForce

IN_FORCE_DELAY = dt.timedelta(days=10)
RULES_CLAUSES = frozenset(f"§{n}" for n in range(1, 12))


@dataclass(frozen=True)
class LegalAct:
    act_id: str
    title: str
    number: str
    adopted_on: dt.date
    registration_number: str | None = None
    registered_on: dt.date | None = None
    published_on: dt.date | None = None
    in_force_on_stated: dt.date | None = None
    # An act that puts the Rules (an edition) into force; others only amend or repeal.
    edition_of_rules: bool = False
    clauses: frozenset[str] = field(default_factory=frozenset)
    repeals: tuple[str, ...] = ()

    @property
    def in_force_from(self) -> dt.date | None:
        if self.in_force_on_stated is not None:
            return self.in_force_on_stated
        if self.published_on is None:
            return None
        return self.published_on + IN_FORCE_DELAY

    def in_force_by(self, on: dt.date) -> bool:
        start = self.in_force_from
        return start is not None and start <= on


@dataclass(frozen=True)
class LegalBasis:
    """The act and clause a decision applied, recorded in every event."""

    act_id: str
    act_title: str
    clause: str

    def as_dict(self) -> dict[str, str]:
        return {"act_id": self.act_id, "act": self.act_title, "clause": self.clause}


SEED_ACTS: tuple[LegalAct, ...] = (
    LegalAct(
        act_id="almaty-maslikhat-152-2017",
        title="Almaty maslikhat decision No. 152 of 15 September 2017",
        number="152",
        adopted_on=dt.date(2017, 9, 15),
        registration_number="1410",
        published_on=dt.date(2017, 10, 19),
        edition_of_rules=True,
        clauses=RULES_CLAUSES,
    ),
    LegalAct(
        act_id="almaty-maslikhat-22-2021",
        title="Almaty maslikhat decision No. 22 of 19 February 2021 (new edition of the Rules)",
        number="22",
        adopted_on=dt.date(2021, 2, 19),
        registration_number="1691",
        registered_on=dt.date(2021, 3, 1),
        edition_of_rules=True,
        clauses=RULES_CLAUSES,
    ),
    LegalAct(
        act_id="almaty-maslikhat-97-2024",
        title="Almaty maslikhat decision No. 97 of 29 March 2024",
        number="97",
        adopted_on=dt.date(2024, 3, 29),
        repeals=("almaty-maslikhat-22-2021",),
    ),
)


class LegalActRegistry:
    """Answers 'which edition of the Rules was in force on date D'."""

    def __init__(self, acts: tuple[LegalAct, ...] = SEED_ACTS) -> None:
        self._acts = {a.act_id: a for a in acts}

    def acts(self) -> list[LegalAct]:
        return list(self._acts.values())

    def get(self, act_id: str) -> LegalAct:
        return self._acts[act_id]

    def with_act(self, act: LegalAct) -> LegalActRegistry:
        return LegalActRegistry(tuple({**self._acts, act.act_id: act}.values()))

    def with_publication(self, act_id: str, published_on: dt.date) -> LegalActRegistry:
        return self.with_act(replace(self._acts[act_id], published_on=published_on))

    def repealed_by(self, act_id: str, on: dt.date) -> LegalAct | None:
        for act in self._acts.values():
            if act_id in act.repeals and act.in_force_by(on):
                return act
        return None

    def rules_in_force(self, on: dt.date) -> LegalAct:
        """The edition of the Rules in force on `on`; a repealed edition does not revive
        an earlier one (the repeal ends the Rules until a new edition is in force)."""
        editions = [a for a in self._acts.values() if a.edition_of_rules and a.in_force_by(on)]
        if not editions:
            raise NotInForce("Rules", f"no edition of the Rules is in force on {on.isoformat()}")
        latest = max(editions, key=lambda a: a.in_force_from or dt.date.min)
        repeal = self.repealed_by(latest.act_id, on)
        if repeal is not None:
            raise NotInForce(
                "Rules",
                f"the Rules of {latest.title} were repealed by {repeal.title} "
                f"from {repeal.in_force_from}; nothing is in force on {on.isoformat()}",
            )
        return latest

    def basis(self, clause: str, on: dt.date) -> LegalBasis:
        """The legal basis for applying `clause` on `on`, or a refusal saying why not."""
        act = self.rules_in_force(on)
        if clause not in act.clauses:
            raise NotInForce(
                clause, f"clause {clause} is not part of the Rules in force on {on} ({act.title})"
            )
        return LegalBasis(act_id=act.act_id, act_title=act.title, clause=clause)
