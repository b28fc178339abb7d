"""Erasing a data subject: record the decision, then delete the subject's key."""

from __future__ import annotations

import re

from eventsourcing.persistence import IntegrityError

from domain.context import CommandContext
from domain.erasure import Erasure
from domain.errors import InvalidTransition, InvalidValue
from domain.iin import IIN
from domain.legal_acts import LegalBasis
from infra.personal_data import SealingMapper, subject_id_of
from infra.service_base import Outcome, ServiceBase

_DOCUMENT = re.compile(r"^(?P<type>[a-z_]{2,40}):(?P<number>[A-Za-z0-9-]{1,40})$")


def parse_subject(subject: str) -> str:
    """'IIN' or 'document_type:number' → the subject's pseudonymous id."""
    text = subject.strip()
    if text.isdigit():
        return subject_id_of(iin=IIN.parse(text).value)
    match = _DOCUMENT.match(text)
    if match is None:
        raise InvalidValue("the subject is an IIN or 'document_type:number' (passport:N123)")
    return subject_id_of(document_type=match["type"], document_number=match["number"])


class ErasureCommands(ServiceBase):
    def erase_subject(self, subject: str, legal_basis: str, ctx: CommandContext) -> Outcome:
        subject_id = parse_subject(subject)
        if not legal_basis.strip():
            raise InvalidValue("an erasure needs its legal basis")
        basis = LegalBasis(act_id="external", act_title=legal_basis.strip()[:500], clause="")
        try:
            outcome = self._save(Erasure(subject_id=subject_id, legal_basis=basis.act_title,
                                         meta=ctx.meta(basis)))
        except IntegrityError:
            outcome = None  # recorded before; finish the key deletion below if it was cut off
        self.decisions.clear()  # they hold the subject's personal data in clear
        mapper = self.mapper
        erased_now = (mapper.sealer.keys.erase(subject_id)
                      if isinstance(mapper, SealingMapper) else False)
        if isinstance(mapper, SealingMapper):
            mapper.sealer.forget_ciphers()
        if outcome is None:
            if not erased_now:
                raise InvalidTransition(f"data subject {subject_id} was already erased")
            return Outcome(Erasure.create_id(subject_id), ())
        return outcome
