import pickle
from datetime import date

import pytest

from infra.identity_numbers import (
    PROVINCE_CODES,
    DateBeforeBirth,
    InvalidIdNumber,
    InvalidPhone,
    age_on,
    birth_date_of,
    gender_of,
    make_test_id_number,
    validate_id_number,
    validate_phone,
)

TODAY = date(2024, 6, 1)


def with_check_digit(first_17: str) -> str:
    """The test's own GB 11643-1999 check digit, written from the standard, not from the module."""
    weights = [2 ** (17 - i) % 11 for i in range(17)]  # 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2
    remainder = sum(int(d) * w for d, w in zip(first_17, weights)) % 11
    check = (12 - remainder) % 11
    return first_17 + ("X" if check == 10 else str(check))


def test_own_check_digit_agrees_with_published_sample():
    assert with_check_digit("11010519491231002") == "11010519491231002X"


@pytest.mark.parametrize(
    "valid",
    [
        "11010519491231002X",
        with_check_digit("32010219900101123"),
        with_check_digit("44030620000229456"),  # leap day
        with_check_digit("65010219000101001"),  # earliest allowed birth date
        with_check_digit("81000020240601001"),  # born "today"
    ],
)
def test_valid_numbers_pass_and_are_returned_normalised(valid):
    assert validate_id_number(valid, today=TODAY) == valid


def test_normalises_lower_case_x_spaces_and_full_width():
    assert validate_id_number(" 110105 19491231 002x ", today=TODAY) == "11010519491231002X"
    assert validate_id_number("１１０１０５１９４９１２３１００２Ｘ", today=TODAY) == "11010519491231002X"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "format"),
        ("1101051949123100", "format"),
        ("110105194912310021X", "format"),
        ("11010519491231002Y", "format"),
        ("X1010519491231002X", "format"),
        ("110105491231002", "format"),  # 15-digit legacy numbers are not accepted
        (None, "format"),
        (11010519491231002, "format"),
        ("110105194912310021", "checksum"),
        ("11010519491231003X", "checksum"),
        (with_check_digit("00010519491231002"), "region"),
        (with_check_digit("99010519491231002"), "region"),
        (with_check_digit("24010519491231002"), "region"),
        (with_check_digit("32010219900230123"), "birth_date"),  # 30 February
        (with_check_digit("32010219900229123"), "birth_date"),  # 1990 is not a leap year
        (with_check_digit("32010219901301123"), "birth_date"),
        (with_check_digit("32010219900100123"), "birth_date"),
        (with_check_digit("32010218991231123"), "birth_date"),  # before 1900
        (with_check_digit("32010220240602123"), "birth_date"),  # tomorrow
        (with_check_digit("32010230000101123"), "birth_date"),
    ],
)
def test_invalid_numbers_carry_a_reason(value, reason):
    with pytest.raises(InvalidIdNumber) as caught:
        validate_id_number(value, today=TODAY)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert message
    if isinstance(value, str) and value:
        assert value not in message
        assert value[:6] not in message and value[-4:] not in message


def test_future_birth_date_against_the_real_today():
    with pytest.raises(InvalidIdNumber) as caught:
        validate_id_number(make_test_id_number(birth=date(2999, 1, 1)))
    assert caught.value.reason == "birth_date"


def test_exception_round_trips_through_pickle_without_the_value():
    with pytest.raises(InvalidIdNumber) as caught:
        validate_id_number("110105194912310021")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert copy.reason == "checksum" and str(copy) == str(caught.value)
    assert "110105194912310021" not in repr(caught.value)


def test_province_table():
    expected = (
        {str(c) for c in range(11, 16)}
        | {"21", "22", "23"}
        | {str(c) for c in range(31, 38)}
        | {str(c) for c in range(41, 47)}
        | {str(c) for c in range(50, 55)}
        | {str(c) for c in range(61, 66)}
        | {"71", "81", "82", "83", "91"}
    )
    assert set(PROVINCE_CODES) == expected


def test_birth_date_age_and_gender():
    sample = "11010519491231002X"
    assert birth_date_of(sample) == date(1949, 12, 31)
    assert gender_of(sample) == "F"  # 17th digit 2
    assert gender_of(with_check_digit("11010519491231001")) == "M"
    assert age_on(sample, date(2024, 12, 30)) == 74
    assert age_on(sample, date(2024, 12, 31)) == 75
    assert age_on(sample, date(1949, 12, 31)) == 0
    with pytest.raises(DateBeforeBirth):
        age_on(sample, date(1949, 12, 30))


def test_leap_day_birthday_comes_of_age_on_1_march():
    leap = with_check_digit("44030620040229456")
    assert age_on(leap, date(2022, 2, 28)) == 17
    assert age_on(leap, date(2022, 3, 1)) == 18
    assert age_on(leap, date(2024, 2, 29)) == 20


def test_helpers_reject_invalid_numbers():
    with pytest.raises(InvalidIdNumber):
        birth_date_of("110105194912310021")
    with pytest.raises(InvalidIdNumber):
        gender_of("garbage")


def test_make_test_id_number_matches_independent_check_digit():
    made = make_test_id_number()
    assert made == with_check_digit("32010219900101123")
    assert validate_id_number(made) == made
    female = make_test_id_number(region="110105", birth=date(1985, 7, 15), seq=2)
    assert female == with_check_digit("11010519850715002")
    assert gender_of(female) == "F"
    for seq in range(0, 1000, 37):
        assert validate_id_number(make_test_id_number(seq=seq)) == make_test_id_number(seq=seq)


@pytest.mark.parametrize(("region", "seq"), [("32010", 1), ("32010A", 1), ("320102", -1), ("320102", 1000)])
def test_make_test_id_number_rejects_bad_arguments(region, seq):
    with pytest.raises(ValueError):
        make_test_id_number(region=region, seq=seq)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("13812345678", "13812345678"),
        ("+8613812345678", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("0086 13812345678", "13812345678"),
        (" 199 0000 1111 ", "19900001111"),
        ("１３８１２３４５６７８", "13812345678"),
    ],
)
def test_validate_phone_accepts(value, expected):
    assert validate_phone(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "12812345678", "1381234567", "138123456789", "+8512812345678", "86138123456", "1381234567x", "+86", None, 13812345678],
)
def test_validate_phone_rejects_without_echoing(value):
    with pytest.raises(InvalidPhone) as caught:
        validate_phone(value)
    assert isinstance(caught.value, ValueError)
    if isinstance(value, str) and len(value) > 3:
        assert value not in str(caught.value)
