"""Proposal commands (§5): the akimat drafts and submits; the authorised body decides."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from domain.commands import Command
from domain.proposal import TERRITORY_KINDS, ProposalKind
from domain.quota import MAX_LIMIT, QuotaKind
from domain.quota_commands import PeriodStr
from domain.territory import SettlerCategory, Territory

Text = Annotated[str, Field(min_length=1, max_length=4000)]


class DraftProposal(Command):
    """Territory kinds name the categories; quota kinds name the quota and the change."""

    kind: ProposalKind
    territory: Territory = Territory.ALMATY
    categories: list[SettlerCategory] | None = Field(
        default=None, description="include/exclude: kandas and/or settler"
    )
    quota_kind: QuotaKind | None = None
    period: PeriodStr | None = None
    change_by: Annotated[int, Field(ge=1, le=MAX_LIMIT)] | None = Field(
        default=None, description="raise/lower: places to add or remove"
    )
    rationale: Text

    @model_validator(mode="after")
    def _fields_match_kind(self) -> DraftProposal:
        quota_fields = {"quota_kind": self.quota_kind, "period": self.period,
                        "change_by": self.change_by}
        if self.kind in TERRITORY_KINDS:
            if not self.categories:
                raise ValueError(f"a {self.kind} proposal names at least one category")
            if len(set(self.categories)) != len(self.categories):
                raise ValueError("a category is listed twice")
            extra = [k for k, v in quota_fields.items() if v is not None]
            if extra:
                raise ValueError(f"a {self.kind} proposal takes no {', '.join(extra)}")
        else:
            missing = [k for k, v in quota_fields.items() if v is None]
            if missing:
                raise ValueError(f"a {self.kind} proposal needs {', '.join(missing)}")
            if self.categories is not None:
                raise ValueError(f"a {self.kind} proposal takes no categories")
        return self


class SubmitProposal(Command):
    pass


class AcceptProposal(Command):
    reasons: Text | None = None


class DeclineProposal(Command):
    reasons: Text
