"""Validation of mainland resident ID numbers (GB 11643-1999) and mobile phone numbers.

Error messages never echo the submitted value: they reach callers and logs, and the value is
personal data.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = [
    "PROVINCE_CODES",
    "DateBeforeBirth",
    "InvalidIdNumber",
    "InvalidPhone",
    "age_on",
    "birth_date_of",
    "check_character",
    "gender_of",
    "make_test_id_number",
    "validate_id_number",
    "validate_phone",
]

# First two digits of a resident ID: the province-level division of first registration (GB/T 2260),
# plus the codes used on residence permits (81-83) and for registration abroad (91).
PROVINCE_CODES: dict[str, str] = {
    "11": "北京市",
    "12": "天津市",
    "13": "河北省",
    "14": "山西省",
    "15": "内蒙古自治区",
    "21": "辽宁省",
    "22": "吉林省",
    "23": "黑龙江省",
    "31": "上海市",
    "32": "江苏省",
    "33": "浙江省",
    "34": "安徽省",
    "35": "福建省",
    "36": "江西省",
    "37": "山东省",
    "41": "河南省",
    "42": "湖北省",
    "43": "湖南省",
    "44": "广东省",
    "45": "广西壮族自治区",
    "46": "海南省",
    "50": "重庆市",
    "51": "四川省",
    "52": "贵州省",
    "53": "云南省",
    "54": "西藏自治区",
    "61": "陕西省",
    "62": "甘肃省",
    "63": "青海省",
    "64": "宁夏回族自治区",
    "65": "新疆维吾尔自治区",
    "71": "台湾省",
    "81": "香港特别行政区",
    "82": "澳门特别行政区",
    "83": "台湾地区居民居住证",
    "91": "国外",
}

# ISO 7064 MOD 11-2 as GB 11643-1999 applies it.
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARACTERS = "10X98765432"
_ID_FORMAT = re.compile(r"[0-9]{17}[0-9X]")
_EARLIEST_BIRTH = date(1900, 1, 1)
# "Today" is the bank's calendar day in China, whatever zone the server runs in.
_BUSINESS_TZ = ZoneInfo("Asia/Shanghai")

_MOBILE_FORMAT = re.compile(r"1[3-9][0-9]{9}")


class InvalidIdNumber(ValueError):
    """A resident ID number is 17 digits and a check character (GB 11643-1999) that match the
    MOD 11-2 checksum, with a real birth date between 1900 and today and a known province code."""

    MESSAGES = {
        "format": "an ID number is 18 characters: 17 digits followed by a digit or X",
        "checksum": "the ID number's check character does not match its other digits",
        "birth_date": "the ID number's birth date is not a real date between 1900-01-01 and today",
        "region": "the ID number's region code is not a known province code",
    }

    def __init__(self, reason: str) -> None:
        # args is just the reason code, so the exception pickles and never carries the value.
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.MESSAGES.get(self.reason, "the ID number is not valid")


class InvalidPhone(ValueError):
    """A mobile number is 11 digits starting 13-19, optionally after +86, 0086 or 86."""

    def __init__(self) -> None:
        super().__init__("a mobile number is 11 digits starting with 13 to 19 (optionally after +86)")


class DateBeforeBirth(ValueError):
    """An age can only be taken on a date on or after the birth date."""


def _business_today() -> date:
    return datetime.now(_BUSINESS_TZ).date()


def check_character(first_17: str) -> str:
    """The GB 11643-1999 check character for the first 17 digits of an ID number."""
    if not re.fullmatch(r"[0-9]{17}", first_17 or ""):
        raise InvalidIdNumber("format")
    total = sum(int(digit) * weight for digit, weight in zip(first_17, _WEIGHTS))
    return _CHECK_CHARACTERS[total % 11]


def _normalise_id(value: str) -> str:
    # NFKC folds full-width digits and "Ｘ" from Chinese input methods; inner spaces are typing noise.
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


def _birth_date_digits(id_number: str) -> date | None:
    try:
        return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return None


def validate_id_number(value: str, *, today: date | None = None) -> str:
    """The normalised 18-character resident ID number, or ``InvalidIdNumber`` with a reason code.

    Checks run in the order format, checksum, region, birth_date; the first failure is reported.
    """
    if not isinstance(value, str):
        raise InvalidIdNumber("format")
    id_number = _normalise_id(value)
    if not _ID_FORMAT.fullmatch(id_number):
        raise InvalidIdNumber("format")
    if check_character(id_number[:17]) != id_number[17]:
        raise InvalidIdNumber("checksum")
    if id_number[:2] not in PROVINCE_CODES:
        raise InvalidIdNumber("region")
    birth = _birth_date_digits(id_number)
    if birth is None or not _EARLIEST_BIRTH <= birth <= (today or _business_today()):
        raise InvalidIdNumber("birth_date")
    return id_number


def birth_date_of(id_number: str) -> date:
    birth = _birth_date_digits(validate_id_number(id_number))
    assert birth is not None  # validate_id_number has checked the date
    return birth


def age_on(id_number: str, on: date) -> int:
    """Full years of age on ``on``; a 29 February birthday counts from 1 March in common years."""
    birth = birth_date_of(id_number)
    if on < birth:
        raise DateBeforeBirth("an age can only be taken on a date on or after the birth date")
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def gender_of(id_number: str) -> Literal["M", "F"]:
    """From the 17th digit: odd is male, even is female."""
    return "M" if int(validate_id_number(id_number)[16]) % 2 else "F"


def validate_phone(value: str) -> str:
    """The bare 11-digit mainland mobile number, or ``InvalidPhone``."""
    if not isinstance(value, str):
        raise InvalidPhone()
    phone = re.sub(r"[\s\-]+", "", unicodedata.normalize("NFKC", value))
    if phone.startswith("+86"):
        phone = phone[3:]
    elif phone.startswith("0086"):
        phone = phone[4:]
    # A bare number starts with 1, so a 13-digit "86..." can only be the country code.
    elif phone.startswith("86") and len(phone) == 13:
        phone = phone[2:]
    if not _MOBILE_FORMAT.fullmatch(phone):
        raise InvalidPhone()
    return phone


def make_test_id_number(region: str = "320102", birth: date = date(1990, 1, 1), seq: int = 123) -> str:
    """A valid ID number for tests and demo data: ``region`` (6 digits), ``birth``, ``seq`` (0-999).

    ``seq``'s last digit sets the gender: odd is male.
    """
    if not re.fullmatch(r"[0-9]{6}", region):
        raise ValueError("region is a 6-digit administrative division code")
    if not 0 <= seq <= 999:
        raise ValueError("seq is the 3-digit order number, 0 to 999")
    first_17 = f"{region}{birth.year:04d}{birth.month:02d}{birth.day:02d}{seq:03d}"
    return first_17 + check_character(first_17)
