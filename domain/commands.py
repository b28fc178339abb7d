"""Commands as pydantic models: the same schema for HTTP and the Kafka intake.

§2: no command takes ethnicity, religion, origin or wealth; unknown fields are refused,
so such a field cannot slip in as a decision input.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from domain.housing import HousingType
from domain.iin import IIN


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


class Citizen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["citizen"] = "citizen"
    iin: IINStr
    family_name: Name
    given_name: Name
    patronymic: Name | None = None


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


class RegistrationKind(StrEnum):
    PERMANENT = "permanent"
    TEMPORARY = "temporary"


class SubmitRegistration(Command):
    person: Citizen
    address: Address
    housing: Housing
    kind: RegistrationKind = RegistrationKind.PERMANENT
    valid_until: dt.date | None = None

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
    reason: Annotated[str, Field(min_length=1, max_length=1000)]
