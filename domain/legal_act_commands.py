"""Commands on the legal-act registry: register an act, enter its first official
publication or its state registration when they become known, record a repeal."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field, model_validator

from domain.commands import Command
from domain.legal_acts import RULES_CLAUSES, ActFacts

ActId = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9-]{2,80}$",
        description="stable slug, e.g. almaty-maslikhat-22-2021",
    ),
]
Clause = Annotated[str, Field(pattern=r"^§[1-9][0-9]?$")]
Text = Annotated[str, Field(min_length=1, max_length=300)]
ShortText = Annotated[str, Field(min_length=1, max_length=40)]


class RegisterLegalAct(Command):
    act_id: ActId
    title: Text
    number: ShortText
    adopted_on: dt.date
    registration_number: ShortText | None = None
    registered_on: dt.date | None = None
    published_on: dt.date | None = Field(
        default=None, description="first official publication; may be entered later"
    )
    in_force_on: dt.date | None = Field(
        default=None,
        description="only when the act states its own date of entry into "
        "force; otherwise it is the first publication + 10 calendar days",
    )
    edition_of_rules: bool = Field(
        default=False, description="the act puts an edition of the Rules into force"
    )
    clauses: Annotated[list[Clause], Field(max_length=99)] = Field(
        default_factory=list, description="clauses of that edition; all of §1-§11 if omitted"
    )
    repeals: Annotated[list[ActId], Field(max_length=20)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _clauses_belong_to_an_edition(self) -> RegisterLegalAct:
        if self.clauses and not self.edition_of_rules:
            raise ValueError("only an edition of the Rules has clauses")
        if self.act_id in self.repeals:
            raise ValueError("an act cannot repeal itself")
        return self

    def facts(self) -> ActFacts:
        clauses = frozenset(self.clauses) or (
            RULES_CLAUSES if self.edition_of_rules else frozenset()
        )
        return ActFacts(
            act_id=self.act_id,
            title=self.title,
            number=self.number,
            adopted_on=self.adopted_on,
            registration_number=self.registration_number,
            registered_on=self.registered_on,
            published_on=self.published_on,
            in_force_on_stated=self.in_force_on,
            edition_of_rules=self.edition_of_rules,
            clauses=clauses,
            repeals=tuple(dict.fromkeys(self.repeals)),
        )


class EnterPublication(Command):
    published_on: dt.date
    correction_reason: Annotated[str, Field(min_length=1, max_length=1000)] | None = Field(
        default=None, description="required to replace a publication date already entered"
    )


class EnterStateRegistration(Command):
    registration_number: ShortText
    registered_on: dt.date


class RepealLegalAct(Command):
    repealed_by: ActId
