import random
import string
import time
import uuid

from domain.ids import random_bytes, uuid4, uuid5, uuid7


def test_the_rfc_example_and_random_names_match_the_standard_library() -> None:
    assert str(uuid5(uuid.NAMESPACE_DNS, "python.org")) == "886313e1-3b8a-5372-9b90-0c9aee199e5d"
    rng = random.Random(7)
    alphabet = string.printable + "әғқңөұүһіЁё"
    for _ in range(2000):
        namespace = uuid.UUID(int=rng.getrandbits(128))
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        made = uuid5(namespace, name)
        assert made == uuid.uuid5(namespace, name)
        assert made.version == 5 and made.variant == uuid.RFC_4122


def test_case_ids_are_rfc_version_7_in_creation_order_and_unique() -> None:
    before = time.time_ns() // 1_000_000
    made = [uuid7() for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    assert len(set(made)) == len(made)
    for u in made:
        assert u.version == 7 and u.variant == uuid.RFC_4122
        assert before <= u.int >> 80 <= after  # the creation time, in ms
    stamps = [u.int >> 80 for u in made]
    assert stamps == sorted(stamps)


def test_new_cases_take_time_ordered_ids() -> None:
    from domain.proposal import Proposal
    from domain.registration import RegistrationCase
    from domain.relocation import RelocationCase

    case = RegistrationCase(person={}, address={}, housing={}, registration_kind="permanent",
                            valid_until=None, meta={})
    assert case.id.version == 7
    for kind in (RelocationCase, Proposal):
        assert kind.create_id().version == 7


def test_random_ids_are_rfc_version_4_and_unique_across_pages_and_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: uuid4(), range(20_000)))  # many pages of bytes
    assert len(set(made)) == len(made)
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in made)


def test_a_forked_child_never_draws_the_parents_random_bytes() -> None:
    import os

    random_bytes(1)  # the parent holds a page
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next bytes, sent to the parent
        os.write(write, random_bytes(64))
        os._exit(0)
    os.close(write)
    child = os.read(read, 64)
    os.waitpid(pid, 0)
    assert child != random_bytes(64), "the bytes the parent draws next"
