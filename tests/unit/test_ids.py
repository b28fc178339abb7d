import random
import string
import uuid

from domain.ids import uuid5


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
