"""The IIN: 12 digits, YYMMDD birth date, century-and-sex digit, serial, check digit."""

import datetime as dt

import pytest

from domain.iin import IIN, InvalidIIN, check_digit, make_iin

VALID = make_iin(dt.date(1990, 5, 17), "female", 123).value


def test_valid_iin_gives_birth_date_and_sex() -> None:
    iin = IIN.parse(VALID)
    assert iin.birth_date == dt.date(1990, 5, 17)
    assert iin.sex == "female"


@pytest.mark.parametrize(
    ("digit", "year", "sex"),
    [("1", 1890, "male"), ("2", 1890, "female"), ("3", 1990, "male"), ("4", 1990, "female"),
     ("5", 2090, "male"), ("6", 2090, "female")],
)
def test_century_digit_sets_century_and_sex(digit: str, year: int, sex: str) -> None:
    first11 = f"900101{digit}0001"
    check = check_digit(first11)
    assert check is not None
    iin = IIN.parse(first11 + str(check))
    assert (iin.birth_date.year, iin.sex) == (year, sex)


def test_check_digit_uses_second_weights_when_first_gives_ten() -> None:
    # Find an 11-digit prefix whose first weighted sum is 10 mod 11, computed here
    # independently of the module under test.
    for serial in range(10000):
        first11 = f"8503154{serial:04d}"
        digits = [int(c) for c in first11]
        if sum(d * w for d, w in zip(digits, range(1, 12), strict=True)) % 11 != 10:
            continue
        second = sum(d * w for d, w in zip(digits, (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2),
                                            strict=True)) % 11
        if second == 10:
            continue
        assert IIN.parse(first11 + str(second)).value == first11 + str(second)
        return
    pytest.fail("no prefix exercises the second weights")


def test_no_check_digit_possible_is_refused() -> None:
    for serial in range(10000):
        first11 = f"8503154{serial:04d}"
        if check_digit(first11) is None:
            with pytest.raises(InvalidIIN) as err:
                IIN.parse(first11 + "0")
            assert err.value.part == "check digit"
            return
    pytest.fail("no prefix without a check digit found")


def test_wrong_check_digit_says_check_digit_and_expected_value() -> None:
    wrong = VALID[:11] + str((int(VALID[11]) + 1) % 10)
    with pytest.raises(InvalidIIN) as err:
        IIN.parse(wrong)
    assert err.value.part == "check digit"
    assert f"expected {VALID[11]}" in str(err.value)


@pytest.mark.parametrize("digit", ["0", "7", "8", "9"])
def test_century_digit_outside_1_to_6_is_refused(digit: str) -> None:
    with pytest.raises(InvalidIIN) as err:
        IIN.parse(VALID[:6] + digit + VALID[7:])
    assert err.value.part == "century digit"
    assert "century" in str(err.value)


@pytest.mark.parametrize("yymmdd", ["900230", "901301", "900000", "010229"])
def test_impossible_birth_date_is_refused(yymmdd: str) -> None:
    with pytest.raises(InvalidIIN) as err:
        IIN.parse(yymmdd + "40123" + "0")
    assert err.value.part == "date"
    assert yymmdd in str(err.value)


def test_leap_day_in_a_leap_year_is_a_real_date() -> None:
    iin = make_iin(dt.date(2000, 2, 29), "male", 7)
    assert IIN.parse(iin.value).birth_date == dt.date(2000, 2, 29)


@pytest.mark.parametrize("raw", ["", "12345", "1234567890123", "90051740123a", None])
def test_not_twelve_digits_is_a_format_error(raw: object) -> None:
    with pytest.raises(InvalidIIN) as err:
        IIN.parse(raw)  # type: ignore[arg-type]
    assert err.value.part == "format"
