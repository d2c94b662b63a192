"""Wire values of the contract (§2): strict parsers shared by every event model.

Money and rates arrive as JSON strings and become `Decimal` without ever
passing through a float; dates and periods are checked against the calendar.
Each failure carries a message meant for the API caller.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import GetCoreSchemaHandler, TypeAdapter, ValidationError
from pydantic_core import CoreSchema
from pydantic_core import core_schema as cs

#: Patterns run by pydantic-core's compiled regex engine: anchored at both ends of the text.
_PLAIN_DECIMAL = r"\A-?[0-9]+(?:\.[0-9]+)?\z"
_MONEY_DIGITS = r"\A-?[0-9]{1,15}(?:\.[0-9]{1,2})?\z"
_RATE_DIGITS = r"\A-?[0-9]{1,6}(?:\.[0-9]{1,6})?\z"
_DATE = r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\z"
_PERIOD = r"\A[0-9]{4}-(?:0[1-9]|1[0-2]|Q[1-4])\z"
_ID = r"\A[A-Za-z0-9._:-]{1,128}\z"
_NO_CONTROL = r"\A[^\x00-\x1f\x7f-\x9f]*\z"

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


WireKind = Literal["text", "money", "rate", "day"]


def _fails(message: str, schema: CoreSchema) -> CoreSchema:
    """`schema`, whose every failure answers the caller `message`."""
    return cs.custom_error_schema(schema, "contract", custom_error_message=message)


def _matching(pattern: str, message: str) -> CoreSchema:
    """A string matching `pattern`; anything else answers `message`."""
    return _fails(message, cs.str_schema(strict=True, pattern=pattern))


@dataclass(frozen=True, eq=False)  # hashed by identity: typing hashes annotations, and schemas are dicts
class Wire:
    """A wire value of the contract, checked in pydantic-core's compiled code (decision 48).

    Each step fails with the message meant for the API caller, and later
    steps only see what earlier ones accepted: a Python validator per field
    cost more than the rest of a model's validation. `kind` says how the
    log's trusted decoding (`ledger.decode`) converts a stored value.
    """

    kind: WireKind
    steps: tuple[CoreSchema, ...]

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return cs.chain_schema(list(self.steps)) if len(self.steps) > 1 else self.steps[0]

    def _compiled(self) -> Any:
        """The check alone, compiled (pydantic-core's `SchemaValidator`), for use outside a model."""
        return TypeAdapter(Annotated[Any, self]).validator

    def parser(self) -> Callable[[Any], Any]:
        """The same check outside a model (query parameters): `ValueError` with the same message."""
        validate = self._compiled().validate_python

        def parse(value: Any) -> Any:
            try:
                return validate(value)
            except ValidationError as error:
                raise ValueError(error.errors()[0]["msg"]) from None

        return parse

    def accepts(self) -> Callable[[Any], bool]:
        """Whether a value passes the check, without making an error (a third of `parser`'s cost)."""
        check: Callable[[Any], bool] = self._compiled().isinstance_python
        return check


@dataclass(frozen=True)
class Bound:
    """Limits of a decimal wire value, with the message for a value outside them."""

    message: str
    gt: Decimal | None = None
    ge: Decimal | None = None
    le: Decimal | None = None


def _decimal(kind: WireKind, digits: str, limits: str, bound: Bound | None) -> Wire:
    parsed: CoreSchema = cs.decimal_schema(strict=False, allow_inf_nan=False)  # from a string that passed the patterns
    if bound is not None:
        limited = cs.decimal_schema(strict=False, allow_inf_nan=False, gt=bound.gt, ge=bound.ge, le=bound.le)
        parsed = _fails(bound.message, limited)  # parsing cannot fail here, so only the bound can
    return Wire(
        kind,
        (
            _fails('must be a JSON string in plain decimal notation, e.g. "1234.50"', cs.str_schema(strict=True)),
            _matching(
                _PLAIN_DECIMAL,
                "must be plain decimal notation: an optional minus, digits, an optional point "
                "and digits (no exponent, sign, spaces or separators)",
            ),
            _matching(digits, f"has too many digits: at most {limits}"),
            parsed,
        ),
    )


def money(bound: Bound | None = None) -> Wire:
    """Money: at most 15 digits before the point and 2 after."""
    return _decimal("money", _MONEY_DIGITS, "15 digits before the point and 2 after", bound)


def rate(bound: Bound | None = None) -> Wire:
    """Rates, shares and tier `from`: at most 6 digits before the point and 6 after."""
    return _decimal("rate", _RATE_DIGITS, "6 digits before the point and 6 after", bound)


_DAY = Wire(
    "day",
    (
        _matching(_DATE, "must be a date string YYYY-MM-DD"),
        _fails("is not a real calendar date", cs.date_schema(strict=False)),
    ),
)
_PERIOD_WIRE = Wire("text", (_matching(_PERIOD, "must be a period YYYY-MM (month) or YYYY-Qn (quarter)"),))
_ID_WIRE = Wire("text", (_matching(_ID, "must be a string of 1-128 characters from A-Z a-z 0-9 . _ : -"),))
_TEXT = Wire(
    "text",
    (
        _fails("must be a string", cs.str_schema(strict=True)),
        _fails("must be 1-200 characters long", cs.str_schema(min_length=1, max_length=200)),
        _matching(_NO_CONTROL, "must not contain control characters"),
    ),
)

Money = Annotated[Decimal, money()]
Day = Annotated[date, _DAY]
Period = Annotated[str, _PERIOD_WIRE]
Id = Annotated[str, _ID_WIRE]
Text = Annotated[str, _TEXT]

#: For query parameters and envelope ids, outside a model.
parse_period: Callable[[Any], str] = _PERIOD_WIRE.parser()
parse_id: Callable[[Any], str] = _ID_WIRE.parser()
is_id: Callable[[Any], bool] = _ID_WIRE.accepts()


# --- arithmetic helpers used wherever the contract says "rounded" --------------------


def round_cents(value: Decimal) -> Decimal:
    """ROUND_HALF_UP to cents: the only rounding the contract allows for money."""
    return value.quantize(CENT, ROUND_HALF_UP, EXACT)  # positional: keywords cost 2.5x here


def money_str(value: Decimal) -> str:
    """A money figure on the wire: rounded half-up to exactly two fraction digits; never "-0.00"
    (a target of "-0", or a negative figure under half a cent, is zero to a finance team)."""
    cents = round_cents(value)
    return format(cents if cents else abs(cents), "f")


def money_figure(value: Decimal) -> Decimal:
    """`money_str`'s figure as a decimal (the statement view's columns): no text made to be parsed back."""
    cents = round_cents(value)
    return cents if cents else abs(cents)


def exact_str(value: Decimal) -> str:
    """An exact decimal in plain notation (never an exponent)."""
    return format(value, "f")


def attainment(credited: Decimal, target: Decimal | None) -> Decimal | None:
    """Credited over target to four places, rounded half-up; None without a (nonzero) target."""
    if target is None or target == 0:
        return None
    return _QUOTIENT.divide(credited, target).quantize(_BASIS_POINT, ROUND_HALF_UP, _QUOTIENT)


def attainment_str(credited: Decimal, target: Decimal | None) -> str | None:
    value = attainment(credited, target)
    return None if value is None else format(value, "f")


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


@lru_cache(maxsize=4096)  # every statement asks whether it is where adjustments land
def next_period(period: str) -> str:
    year = int(period[:4])
    if "Q" in period:
        quarter = int(period[6])
        return f"{year + 1:04d}-Q1" if quarter == 4 else f"{year:04d}-Q{quarter + 1}"
    month = int(period[5:7])
    return f"{year + 1:04d}-01" if month == 12 else f"{year:04d}-{month + 1:02d}"


@lru_cache(maxsize=4096)
def period_days(period: str) -> tuple[int, int]:
    """The ordinals of a period's first and last days."""
    return period_first_day(period).toordinal(), period_last_day(period).toordinal()


@lru_cache(maxsize=4096)  # statements and rankings ask for the same few periods' days over and over
def period_last_day(period: str) -> date:
    """The last day; year 0000 has no days, so its periods answer 0001-01-01 (no date falls in them)."""
    following = next_period(period)
    if following.startswith("10000"):
        return date(9999, 12, 31)
    if period.startswith("0000"):
        return date.min
    return period_first_day(following) - timedelta(days=1)
