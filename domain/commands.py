"""Commands as pydantic models: the same schema for HTTP and the Kafka intake.

§2: no command takes ethnicity, religion, origin or wealth; unknown fields are refused,
so such a field cannot slip in as a decision input.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from domain.housing import HousingType
from domain.iin import IIN
from domain.person import normalised_document
from domain.registration import DeregistrationReason


def _valid_iin(value: str) -> str:
    return IIN.parse(value).value


IINStr = Annotated[str, Field(min_length=1, max_length=20), AfterValidator(_valid_iin)]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class District(StrEnum):
    """The eight districts of Almaty."""

    ALATAU = "Alatau"
    ALMALY = "Almaly"
    AUEZOV = "Auezov"
    BOSTANDYK = "Bostandyk"
    ZHETYSU = "Zhetysu"
    MEDEU = "Medeu"
    NAURYZBAY = "Nauryzbay"
    TURKSIB = "Turksib"


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    effective_date: dt.date | None = Field(
        default=None, description="Date the decision takes effect; today when omitted."
    )


_DOCUMENT_TYPE = re.compile(r"^[a-z_]{2,40}$")
_DOCUMENT_NUMBER = re.compile(r"^[A-Z0-9-]{1,40}$")


def _document_type(value: str) -> str:
    kind, _ = normalised_document(value, "-")
    if not _DOCUMENT_TYPE.match(kind):
        raise ValueError(
            "a document type is 2-40 letters or underscores (passport, residence_permit)"
        )
    return kind


def _document_number(value: str) -> str:
    _, number = normalised_document("-", value)
    if not _DOCUMENT_NUMBER.match(number):
        raise ValueError("a document number is 1-40 letters, digits or hyphens")
    return number


DocumentType = Annotated[str, Field(min_length=1, max_length=60), AfterValidator(_document_type)]
DocumentNumber = Annotated[
    str, Field(min_length=1, max_length=60), AfterValidator(_document_number)
]


class RegisteredPerson(BaseModel):
    """Who is registered (§9): a citizen by IIN; a foreigner or stateless person by an
    identity document, and by IIN too once one is issued. One flat shape (not a tagged
    union) so a wrong IIN is reported at `person.iin` whatever the kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["citizen", "foreigner", "stateless"] = "citizen"
    iin: IINStr | None = None
    document_type: DocumentType | None = None
    document_number: DocumentNumber | None = None
    family_name: Name
    given_name: Name
    patronymic: Name | None = None
    birth_date: dt.date | None = Field(
        default=None, description="foreigners and stateless persons; a citizen's is the IIN's"
    )

    @model_validator(mode="after")
    def _identified(self) -> RegisteredPerson:
        if self.kind == "citizen":
            if self.iin is None:
                raise ValueError("a citizen is identified by IIN")
            if self.document_type or self.document_number or self.birth_date:
                raise ValueError(
                    "a citizen is identified by IIN alone (no document_type, "
                    "document_number or birth_date)"
                )
        elif not (self.document_type and self.document_number):
            raise ValueError(f"a {self.kind} person needs document_type and document_number")
        return self


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    district: District
    line: Annotated[str, Field(min_length=1, max_length=200, description="street, house, flat")]


class Housing(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: HousingType
    useful_area_m2: Annotated[float, Field(gt=0, le=100_000)]
    occupants_after_registration: Annotated[
        int, Field(ge=1, le=10_000, description="everyone registered there after this decision")
    ]


class RegistrationHousing(BaseModel):
    """The home a person registers in. §10 counts everyone the city registers at the
    address; `occupants_after_registration` adds residents it does not know of (the
    larger figure is used)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: HousingType
    useful_area_m2: Annotated[float, Field(gt=0, le=100_000)]
    occupants_after_registration: Annotated[
        int | None,
        Field(
            ge=1,
            le=10_000,
            description="everyone living there after this "
            "decision, when more than the city has registered there",
        ),
    ] = None


class RegistrationKind(StrEnum):
    PERMANENT = "permanent"
    TEMPORARY = "temporary"


Reason = Annotated[str, Field(min_length=1, max_length=1000)]


class SubmitRegistration(Command):
    person: RegisteredPerson
    address: Address
    housing: RegistrationHousing
    kind: RegistrationKind = RegistrationKind.PERMANENT
    valid_until: dt.date | None = Field(
        default=None, description="last day of a temporary registration"
    )

    @model_validator(mode="after")
    def _temporary_has_end(self) -> SubmitRegistration:
        if self.kind is RegistrationKind.TEMPORARY and self.valid_until is None:
            raise ValueError("a temporary registration needs valid_until")
        if self.kind is RegistrationKind.PERMANENT and self.valid_until is not None:
            raise ValueError("a permanent registration has no valid_until")
        return self


class ApproveRegistration(Command):
    pass


class RefuseRegistration(Command):
    reason: Reason


class ExtendRegistration(Command):
    """A temporary registration, still running, gets a later end date."""

    valid_until: dt.date


class Deregister(Command):
    """Ends an approved registration (moved out, left the country, deceased); a death
    ends every registration of the person."""

    reason: DeregistrationReason


class CorrectRegistration(Command):
    """An erratum: the named fields are superseded by a new event, never edited."""

    family_name: Name | None = None
    given_name: Name | None = None
    patronymic: Name | None = None
    birth_date: dt.date | None = None
    reason: Reason

    def fields(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, exclude={"reason", "effective_date"})
