"""Relocation commands (§6). §2: no ethnicity, religion, origin or wealth field exists,
and unknown fields are refused, so none can become a decision input."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from domain.commands import Address, Command, Housing, IINStr, Name
from domain.quota_commands import PeriodStr
from domain.territory import SettlerCategory, Territory

MAX_FAMILY = 30
Reason = Annotated[str, Field(min_length=1, max_length=1000)]


class CitizenPerson(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["citizen"] = "citizen"
    iin: IINStr
    family_name: Name
    given_name: Name
    patronymic: Name | None = None


class ForeignPerson(BaseModel):
    """A foreigner or stateless person: identified by a document; IIN when issued."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["foreigner", "stateless"]
    document_type: Annotated[str, Field(min_length=1, max_length=50)]
    document_number: Annotated[str, Field(min_length=1, max_length=50)]
    iin: IINStr | None = None
    family_name: Name
    given_name: Name
    patronymic: Name | None = None


def _person_kind(value: Any) -> str:
    kind = value.get("kind", "citizen") if isinstance(value, dict) else value.kind
    return "citizen" if kind == "citizen" else "foreign"


Person = Annotated[
    Annotated[CitizenPerson, Tag("citizen")] | Annotated[ForeignPerson, Tag("foreign")],
    Discriminator(_person_kind),
]


def identity(person: CitizenPerson | ForeignPerson) -> str:
    if person.iin:
        return f"iin {person.iin}"
    assert isinstance(person, ForeignPerson)
    return f"{person.document_type} {person.document_number}"


class ApplyForRelocation(Command):
    category: SettlerCategory
    applicant: Person
    family_members: Annotated[list[Person], Field(max_length=MAX_FAMILY)] = []
    territory: Territory
    period: PeriodStr

    @model_validator(mode="after")
    def _each_person_once(self) -> ApplyForRelocation:
        seen: set[str] = set()
        for person in [self.applicant, *self.family_members]:
            key = identity(person)
            if key in seen:
                raise ValueError(f"the person with {key} is listed twice")
            seen.add(key)
        return self


class ApproveRelocation(Command):
    pass


class RefuseRelocation(Command):
    reason: Reason


class WithdrawRelocation(Command):
    reason: Reason | None = None


class RecordArrival(Command):
    """The family arrived; they are registered (§9) at this address, §10 applying."""

    address: Address
    housing: Housing
