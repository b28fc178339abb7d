"""The IIN (ИИН): 12-digit individual identification number.

YYMMDD birth date, a century-and-sex digit, four serial digits, one check digit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from domain.errors import InvalidValue

# Century-and-sex digit → (century base year, sex)
_CENTURY = {
    "1": (1800, "male"),
    "2": (1800, "female"),
    "3": (1900, "male"),
    "4": (1900, "female"),
    "5": (2000, "male"),
    "6": (2000, "female"),
}
_WEIGHTS_1 = range(1, 12)
_WEIGHTS_2 = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)


class InvalidIIN(InvalidValue):
    """Which part of the IIN is wrong: `part` is format, century digit, date or check digit."""

    code = "invalid_iin"

    def __init__(self, part: str, message: str) -> None:
        super().__init__(f"IIN {part} is wrong: {message}")
        self.part = part


def check_digit(first11: str) -> int | None:
    """The check digit for the first 11 digits, or None when no check digit is possible."""
    digits = [int(c) for c in first11]
    for weights in (_WEIGHTS_1, _WEIGHTS_2):
        value = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
        if value != 10:
            return value
    return None


@dataclass(frozen=True)
class IIN:
    value: str

    @classmethod
    def parse(cls, raw: str) -> IIN:
        text = raw.strip() if isinstance(raw, str) else ""
        if len(text) != 12 or not text.isdigit():
            raise InvalidIIN("format", f"expected exactly 12 digits, got {raw!r}")
        if text[6] not in _CENTURY:
            raise InvalidIIN(
                "century digit", f"7th digit must be 1-6 (century and sex), got {text[6]}"
            )
        century, _ = _CENTURY[text[6]]
        try:
            dt.date(century + int(text[0:2]), int(text[2:4]), int(text[4:6]))
        except ValueError:
            raise InvalidIIN(
                "date", f"{text[0:6]} (YYMMDD) is not a real birth date"
            ) from None
        expected = check_digit(text[:11])
        if expected is None:
            raise InvalidIIN("check digit", "no valid check digit exists for these 11 digits")
        if int(text[11]) != expected:
            raise InvalidIIN("check digit", f"expected {expected}, got {text[11]}")
        return cls(text)

    @property
    def birth_date(self) -> dt.date:
        century, _ = _CENTURY[self.value[6]]
        v = self.value
        return dt.date(century + int(v[0:2]), int(v[2:4]), int(v[4:6]))

    @property
    def sex(self) -> str:
        return _CENTURY[self.value[6]][1]

    def __str__(self) -> str:
        return self.value


def make_iin(birth_date: dt.date, sex: str, serial: int) -> IIN:
    """Builds a valid IIN (for fixtures and tests); raises when no check digit exists."""
    digit = {(c, s): d for d, (c, s) in _CENTURY.items()}[(birth_date.year // 100 * 100, sex)]
    first11 = f"{birth_date:%y%m%d}{digit}{serial:04d}"
    check = check_digit(first11)
    if check is None:
        raise InvalidIIN("check digit", "no valid check digit exists for these 11 digits")
    return IIN(first11 + str(check))
