"""Personal fields are sealed per data subject; erasing the key leaves the bytes intact
and the fields unreadable."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.registration import RegistrationCase
from infra.eventstore import build_transcoder
from infra.personal_data import ERASED, PersonalDataSealer, SealingMapper, subject_id_of
from infra.sql import Database
from infra.subject_keys import SubjectErased, SubjectKeyStore

IIN = "900517401231"


@pytest.fixture
def keys(tmp_path: Path) -> SubjectKeyStore:
    return SubjectKeyStore(Database(None, tmp_path / "keys.sqlite"))


def case() -> RegistrationCase:
    return RegistrationCase(
        person={"kind": "citizen", "iin": IIN, "family_name": "Abenova", "given_name": "Aigerim",
                "patronymic": None},
        address={"district": "Medeu", "line": "Dostyk 5, flat 2"},
        housing={"type": "state", "useful_area_m2": 45.0, "occupants_after_registration": 3},
        registration_kind="permanent", valid_until=None, meta={"effective_date": "2025-01-01"},
    )


def test_stored_bytes_hold_no_personal_field_in_clear(keys: SubjectKeyStore) -> None:
    mapper = SealingMapper(build_transcoder(), PersonalDataSealer(keys))
    (event,) = case().collect_events()
    stored = mapper.to_stored_event(event)
    for secret in (IIN, "Abenova", "Aigerim", "Dostyk"):
        assert secret.encode() not in stored.state
    assert b"Medeu" in stored.state and b"state" in stored.state  # not personal
    back = mapper.to_domain_event(stored)
    assert back.person["iin"] == IIN and back.address["line"] == "Dostyk 5, flat 2"
    assert back.person["patronymic"] is None and back.meta == event.meta


def test_later_event_without_identity_is_sealed_under_the_cases_subject(
    keys: SubjectKeyStore,
) -> None:
    mapper = SealingMapper(build_transcoder(), PersonalDataSealer(keys))
    c = case()
    c.refuse(reason="x", meta={"correction": {"family_name": "Abenova-Seitova"}})
    first, second = (mapper.to_stored_event(e) for e in c.collect_events())
    assert b"Seitova" not in second.state
    assert mapper.to_domain_event(second).meta["correction"]["family_name"] == "Abenova-Seitova"


def test_erasure_makes_fields_unreadable_but_keeps_bytes(keys: SubjectKeyStore) -> None:
    mapper = SealingMapper(build_transcoder(), PersonalDataSealer(keys))
    (event,) = case().collect_events()
    stored = mapper.to_stored_event(event)
    subject = subject_id_of(iin=IIN)
    assert keys.erase(subject) is True
    assert keys.erase(subject) is False
    erased = mapper.to_domain_event(stored)
    assert erased.person["iin"] == f"erased:{subject}"
    assert erased.person["family_name"] == ERASED and erased.address["line"] == ERASED
    assert erased.address["district"] == "Medeu"
    with pytest.raises(SubjectErased):
        mapper.to_stored_event(case().collect_events()[0])


def test_subjects_have_their_own_keys(keys: SubjectKeyStore) -> None:
    a, b = subject_id_of(iin=IIN), subject_id_of(document_type="passport", document_number="N1")
    assert a != b and keys.key_for_writing(a) != keys.key_for_writing(b)
