"""Wire values of the contract (§2): strict parsers shared by every event model.

Money and rates arrive as JSON strings and become `Decimal` without ever
passing through a float; dates and periods are checked against the calendar.
Each parser raises `ValueError` with a message meant for the API caller.
"""

from __future__ import annotations

import functools
import re
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator

_MONEY = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,2})?")
_RATE = re.compile(r"-?[0-9]{1,6}(?:\.[0-9]{1,6})?")
_DECIMAL_SHAPE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
PERIOD_PATTERN = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2]|Q[1-4])")
_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

CENT = Decimal("0.01")
#: Enough digits that no product or quotient of contract values is ever rounded
#: by the context: money has 17 digits, rates 12, so 80 leaves ample room.
EXACT_PRECISION = 80
EXACT = Context(prec=EXACT_PRECISION, rounding=ROUND_HALF_UP)
#: Attainment's quotient: exact digits, rounded as Python's default context does (half-even)
#: before the half-up rounding to four places; a shared context, not a `localcontext` per call.
_QUOTIENT = Context(prec=EXACT_PRECISION)
_BASIS_POINT = Decimal("0.0001")

PeriodLength = Literal["month", "quarter"]


def _decimal(value: Any, pattern: re.Pattern[str], limits: str) -> Decimal:
    if not isinstance(value, str):
        raise ValueError("must be a JSON string in plain decimal notation, e.g. \"1234.50\"")
    if not _DECIMAL_SHAPE.fullmatch(value):
        raise ValueError(
            "must be plain decimal notation: an optional minus, digits, an optional point "
            "and digits (no exponent, sign, spaces or separators)"
        )
    if not pattern.fullmatch(value):
        raise ValueError(f"has too many digits: at most {limits}")
    return Decimal(value)


def parse_money(value: Any) -> Decimal:
    """Money: at most 15 digits before the point and 2 after."""
    return _decimal(value, _MONEY, "15 digits before the point and 2 after")


def parse_rate(value: Any) -> Decimal:
    """Rates, shares and tier `from`: at most 6 digits before the point and 6 after."""
    return _decimal(value, _RATE, "6 digits before the point and 6 after")


def parse_date(value: Any) -> date:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ValueError("must be a date string YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a real calendar date") from None


def parse_period(value: Any) -> str:
    if not isinstance(value, str) or not PERIOD_PATTERN.fullmatch(value):
        raise ValueError("must be a period YYYY-MM (month) or YYYY-Qn (quarter)")
    return value


def parse_id(value: Any) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError("must be a string of 1-128 characters from A-Z a-z 0-9 . _ : -")
    return value


def parse_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if not 1 <= len(value) <= 200:
        raise ValueError("must be 1-200 characters long")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


Money = Annotated[Decimal, BeforeValidator(parse_money)]
Rate = Annotated[Decimal, BeforeValidator(parse_rate)]
Day = Annotated[date, BeforeValidator(parse_date)]
Period = Annotated[str, BeforeValidator(parse_period)]
Id = Annotated[str, BeforeValidator(parse_id)]
Text = Annotated[str, BeforeValidator(parse_text)]


# --- arithmetic helpers used wherever the contract says "rounded" --------------------


def round_cents(value: Decimal) -> Decimal:
    """ROUND_HALF_UP to cents: the only rounding the contract allows for money."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP, context=EXACT)


def money_str(value: Decimal) -> str:
    """A money figure on the wire: rounded half-up to exactly two fraction digits."""
    return format(round_cents(value), "f")


def exact_str(value: Decimal) -> str:
    """An exact decimal in plain notation (never an exponent)."""
    return format(value, "f")


def attainment_str(credited: Decimal, target: Decimal | None) -> str | None:
    if target is None or target == 0:
        return None
    quotient = _QUOTIENT.divide(credited, target)
    return format(quotient.quantize(_BASIS_POINT, ROUND_HALF_UP, _QUOTIENT), "f")


# --- periods ----------------------------------------------------------------------------


def period_length(period: str) -> PeriodLength:
    return "quarter" if "Q" in period else "month"


def period_of(day: date, length: PeriodLength) -> str:
    return _period(day.year, day.month, length)


@functools.lru_cache(maxsize=4096)
def _period(year: int, month: int, length: PeriodLength) -> str:
    """One string per period: the state keeps one per deal (its quarter)."""
    if length == "quarter":
        return f"{year:04d}-Q{(month - 1) // 3 + 1}"
    return f"{year:04d}-{month:02d}"


def _first_month(period: str) -> tuple[int, int]:
    year = int(period[:4])
    if "Q" in period:
        return year, (int(period[6]) - 1) * 3 + 1
    return year, int(period[5:7])


def months_of(period: str) -> list[str]:
    """The months ("YYYY-MM") a period is made of."""
    if period_length(period) == "month":
        return [period]
    first = (int(period[6]) - 1) * 3 + 1
    return [f"{period[:4]}-{first + i:02d}" for i in range(3)]


@lru_cache(maxsize=4096)
def period_first_day(period: str) -> date:
    """The first day; for the calendar-less year 0000 (the period pattern allows it) 0001-01-01."""
    year, month = _first_month(period)
    return date(year, month, 1) if year else date.min


def next_period(period: str) -> str:
    year = int(period[:4])
    if "Q" in period:
        quarter = int(period[6])
        return f"{year + 1:04d}-Q1" if quarter == 4 else f"{year:04d}-Q{quarter + 1}"
    month = int(period[5:7])
    return f"{year + 1:04d}-01" if month == 12 else f"{year:04d}-{month + 1:02d}"


@lru_cache(maxsize=4096)  # statements and rankings ask for the same few periods' days over and over
def period_last_day(period: str) -> date:
    """The last day; year 0000 has no days, so its periods answer 0001-01-01 (no date falls in them)."""
    following = next_period(period)
    if following.startswith("10000"):
        return date(9999, 12, 31)
    if period.startswith("0000"):
        return date.min
    return period_first_day(following) - timedelta(days=1)
