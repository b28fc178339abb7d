"""Legal acts and which edition of the Rules is in force on a date.

An act enters into force ten calendar days after its first official publication
unless it states otherwise; the publication date may be entered later, and until
it is, the act is not in force. The acts themselves are LegalAct aggregates
(domain/legal_act.py); this module answers questions over their facts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from domain.errors import NotInForce

IN_FORCE_DELAY = dt.timedelta(days=10)
RULES_CLAUSES = frozenset(f"§{n}" for n in range(1, 12))


@dataclass(frozen=True)
class ActFacts:
    """What the registry knows of one act on a given moment of the store."""

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


# The basis of the registry's own entries: the law that governs how acts are registered,
# published and enter into force (the seed text cites it for decision No. 22).
LAW_ON_LEGAL_ACTS = "Law of the Republic of Kazakhstan of 6 April 2016 'On legal acts'"


def registry_basis(what: str) -> LegalBasis:
    return LegalBasis(act_id="kz-law-on-legal-acts-2016", act_title=LAW_ON_LEGAL_ACTS, clause=what)


# As the seed text gives them: No. 152 approved the Rules (registered No. 1410, published
# 19 October 2017); No. 22 set out a new edition (registered 1 March 2021, No. 1691, in force
# ten days after a first publication the text does not date); No. 97 repealed No. 22 (in
# force ten days after its first publication, not dated either).
SEED_ACTS: tuple[ActFacts, ...] = (
    ActFacts(
        act_id="almaty-maslikhat-152-2017",
        title="Almaty maslikhat decision No. 152 of 15 September 2017",
        number="152",
        adopted_on=dt.date(2017, 9, 15),
        registration_number="1410",
        published_on=dt.date(2017, 10, 19),
        edition_of_rules=True,
        clauses=RULES_CLAUSES,
    ),
    ActFacts(
        act_id="almaty-maslikhat-22-2021",
        title="Almaty maslikhat decision No. 22 of 19 February 2021 (new edition of the Rules)",
        number="22",
        adopted_on=dt.date(2021, 2, 19),
        registration_number="1691",
        registered_on=dt.date(2021, 3, 1),
        edition_of_rules=True,
        clauses=RULES_CLAUSES,
    ),
    ActFacts(
        act_id="almaty-maslikhat-97-2024",
        title="Almaty maslikhat decision No. 97 of 29 March 2024",
        number="97",
        adopted_on=dt.date(2024, 3, 29),
        repeals=("almaty-maslikhat-22-2021",),
    ),
)


def fold_repeals(acts: Iterable[ActFacts], repealed_by: dict[str, str]) -> list[ActFacts]:
    """Acts with each repeal recorded on the repealed act (act id → repealing act id)
    added to the repealing act's list, which is where the registry reads repeals."""
    facts = {a.act_id: a for a in acts}
    for repealed, by_id in repealed_by.items():
        by = facts.get(by_id)
        if by is not None and repealed not in by.repeals:
            facts[by_id] = replace(by, repeals=(*by.repeals, repealed))
    return list(facts.values())


class LegalActRegistry:
    """Answers 'which edition of the Rules was in force on date D'."""

    def __init__(self, acts: Iterable[ActFacts] = SEED_ACTS) -> None:
        self._acts = {a.act_id: a for a in acts}
        # A registry never changes (a new act makes a new registry), and every command
        # asks about its effective date, mostly today: answers are kept per date.
        self._bases: dict[tuple[str, dt.date], LegalBasis | tuple[str, str]] = {}

    def acts(self) -> list[ActFacts]:
        return list(self._acts.values())

    def get(self, act_id: str) -> ActFacts:
        return self._acts[act_id]

    def with_act(self, act: ActFacts) -> LegalActRegistry:
        return LegalActRegistry({**self._acts, act.act_id: act}.values())

    def with_publication(self, act_id: str, published_on: dt.date) -> LegalActRegistry:
        return self.with_act(replace(self._acts[act_id], published_on=published_on))

    def repealed_by(self, act_id: str, on: dt.date) -> ActFacts | None:
        """The act whose repeal of `act_id` has taken effect by `on`."""
        for act in self._acts.values():
            if act_id in act.repeals and act.in_force_by(on):
                return act
        return None

    def is_in_force(self, act_id: str, on: dt.date) -> bool:
        act = self._acts[act_id]
        return act.in_force_by(on) and self.repealed_by(act_id, on) is None

    def rules_in_force(self, on: dt.date) -> ActFacts:
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
        found = self._bases.get((clause, on))
        if found is None:
            if len(self._bases) > 4096:
                self._bases.clear()
            found = self._bases[(clause, on)] = self._basis(clause, on)
        if isinstance(found, tuple):
            raise NotInForce(*found)
        return found

    def _basis(self, clause: str, on: dt.date) -> LegalBasis | tuple[str, str]:
        """The basis, or the refusal's clause and message."""
        try:
            act = self.rules_in_force(on)
        except NotInForce as refusal:
            return refusal.clause, str(refusal).removeprefix(f"{refusal.clause}: ")
        if clause not in act.clauses:
            return clause, (
                f"clause {clause} is not part of the Rules in force on {on} ({act.title})"
            )
        return LegalBasis(act_id=act.act_id, act_title=act.title, clause=clause)

    def clause_in_force(self, clause: str, on: dt.date) -> bool:
        """Whether a rule of the Rules applies on `on` (a refusal elsewhere if none do)."""
        try:
            self.basis(clause, on)
        except NotInForce:
            return False
        return True
