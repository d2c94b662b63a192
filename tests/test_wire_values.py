"""Wire values (§2) checked in pydantic-core (decision 48) against a plain-Python statement of the same rules.

The oracle below is the rule as the contract words it, written with Python's
`re` and `decimal`: the compiled checks must accept exactly what it accepts,
give the same value, and answer the same message, inside a model and outside.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ledger import events as ev
from ledger.values import (
    Day,
    Text,
    attainment,
    attainment_str,
    is_id,
    money,
    money_figure,
    money_str,
    parse_id,
    parse_period,
    rate,
)

# The wire types' own checks outside a model (`Wire.parser`, as query parameters use them).
parse_money, parse_rate = money().parser(), rate().parser()
parse_date, parse_text = Day.__metadata__[0].parser(), Text.__metadata__[0].parser()

NOT_A_STRING = 'must be a JSON string in plain decimal notation, e.g. "1234.50"'
NOT_PLAIN = (
    "must be plain decimal notation: an optional minus, digits, an optional point "
    "and digits (no exponent, sign, spaces or separators)"
)


def oracle_decimal(value: Any, before: int, after: int) -> Decimal | str:
    if not isinstance(value, str):
        return NOT_A_STRING
    if not re.fullmatch(r"-?[0-9]+(?:\.[0-9]+)?", value):
        return NOT_PLAIN
    if not re.fullmatch(rf"-?[0-9]{{1,{before}}}(?:\.[0-9]{{1,{after}}})?", value):
        return f"has too many digits: at most {before} digits before the point and {after} after"
    return Decimal(value)


def oracle_date(value: Any) -> date | str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        return "must be a date string YYYY-MM-DD"
    try:
        return date.fromisoformat(value)
    except ValueError:
        return "is not a real calendar date"


def oracle_id(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", value):
        return "!must be a string of 1-128 characters from A-Z a-z 0-9 . _ : -"
    return value


def oracle_period(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-(?:0[1-9]|1[0-2]|Q[1-4])", value):
        return "!must be a period YYYY-MM (month) or YYYY-Qn (quarter)"
    return value


def oracle_text(value: Any) -> str:
    if not isinstance(value, str):
        return "!must be a string"
    if not 1 <= len(value) <= 200:
        return "!must be 1-200 characters long"
    if re.search(r"[\x00-\x1f\x7f-\x9f]", value):
        return "!must not contain control characters"
    return value


def outcome(parse: Any, value: Any) -> Any:
    """The parsed value with its type and spelling (a `Decimal` keeps its exponent), or the message."""
    try:
        parsed = parse(value)
    except ValueError as error:
        return str(error)
    return type(parsed), str(parsed)


def expected(result: Any) -> Any:
    return result if isinstance(result, str) else (type(result), str(result))


def bang(parse: Any, value: Any) -> Any:
    """`outcome`, with messages marked by a leading "!" (the accepted values are strings too)."""
    try:
        return parse(value)
    except ValueError as error:
        return f"!{error}"


decimal_like = st.one_of(
    st.from_regex(r"\A-?[0-9]{1,18}(\.[0-9]{0,8})?\Z"),
    st.from_regex(r"\A[ +-]?[0-9.,_eE]{0,12}\Z"),
    st.sampled_from(["0", "-0.00", "00120.50", "1e5", "NaN", "Infinity", "1.", ".5", " 1", "1 ", "\uff11", "1\n"]),
    st.sampled_from(["123456789012345.12", "1234567890123456", "-123456789012345.123", "123456.123456",
                     "1234567", "0.1234567", "-999999.999999"]),
    st.integers(),
    st.floats(allow_nan=False),
    st.none(),
    st.booleans(),
)
date_like = st.one_of(
    st.dates().map(date.isoformat),
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"),
    st.sampled_from(["2026-02-29", "2024-02-29", "0000-01-01", "2026-1-01", "2026-01-01T00:00:00", "20260101", " "]),
    st.text(max_size=12),
    st.integers(),
)
id_like = st.one_of(
    st.from_regex(r"\A[A-Za-z0-9._:-]{0,130}\Z"),
    st.text(max_size=10),
    st.sampled_from(["a" * 128, "a" * 129, "crm-1\n", "x y", "\u00e9", ""]),
    st.integers(),
    st.none(),
)
period_like = st.one_of(
    st.from_regex(r"\A[0-9]{4}-(0[0-9]|1[0-9]|Q[0-9])\Z"),
    st.sampled_from(["2026-Q1", "2026-Q5", "2026-13", "2026-00", "2026-1", "2026-03\n"]),
    st.text(max_size=8),
)
text_like = st.one_of(
    st.text(max_size=210),
    st.sampled_from(["", "a" * 200, "a" * 201, "tab\there", "\x7f", "\x9f", "\xa0 fine", "line\n"]),
    st.integers(),
)


@settings(max_examples=400, deadline=None)
@given(decimal_like)
def test_money_and_rates_match_the_rule(value: Any) -> None:
    assert outcome(parse_money, value) == expected(oracle_decimal(value, 15, 2))
    assert outcome(parse_rate, value) == expected(oracle_decimal(value, 6, 6))


@settings(max_examples=400, deadline=None)
@given(date_like)
def test_days_match_the_rule(value: Any) -> None:
    assert outcome(parse_date, value) == expected(oracle_date(value))


@settings(max_examples=400, deadline=None)
@given(id_like, period_like, text_like)
def test_ids_periods_and_texts_match_the_rule(id_: Any, period: Any, text: Any) -> None:
    assert bang(parse_id, id_) == oracle_id(id_)
    assert is_id(id_) is not oracle_id(id_).startswith("!")  # the envelope's fast path agrees
    assert bang(parse_period, period) == oracle_period(period)
    assert bang(parse_text, text) == oracle_text(text)


def test_parsed_decimals_keep_their_digits() -> None:
    assert str(parse_money("00120.50")) == "120.50"
    assert str(parse_money("-0.00")) == "-0.00"
    assert str(parse_rate("0.000001")) == "0.000001"
    assert isinstance(parse_money("5"), Decimal)


def _problems(model: type[Any], data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in caught.value.errors()}


DEAL = {"deal_id": "d1", "booked_on": "2026-03-14", "amount": "100.00", "currency": "USD",
        "credits": [{"participant_id": "p1", "share": "1"}]}


@pytest.mark.parametrize(
    ("patch", "field", "message"),
    [
        ({"amount": "0"}, "amount", "must be > 0"),
        ({"amount": "-1.00"}, "amount", "must be > 0"),
        ({"amount": 100}, "amount", NOT_A_STRING),
        ({"amount": "1e3"}, "amount", NOT_PLAIN),
        ({"amount": "1.001"}, "amount", "has too many digits: at most 15 digits before the point and 2 after"),
        ({"booked_on": "2026-02-30"}, "booked_on", "is not a real calendar date"),
        ({"booked_on": "2026-3-14"}, "booked_on", "must be a date string YYYY-MM-DD"),
        ({"deal_id": "d 1"}, "deal_id", "must be a string of 1-128 characters from A-Z a-z 0-9 . _ : -"),
        ({"customer": ""}, "customer", "must be 1-200 characters long"),
        ({"customer": "a\x85b"}, "customer", "must not contain control characters"),
        ({"credits": [{"participant_id": "p1", "share": "0"}]}, "credits.0.share", "must be in (0, 1]"),
        ({"credits": [{"participant_id": "p1", "share": "1.5"}]}, "credits.0.share", "must be in (0, 1]"),
    ],
)
def test_a_model_names_the_field_and_the_contract_message(patch: dict[str, Any], field: str, message: str) -> None:
    assert _problems(ev.DealBooked, {**DEAL, **patch}) == {field: message}


def test_bounds_of_rates_and_money_in_plan_rules() -> None:
    rules = {"period": "month", "basis": "booking", "tier_method": "marginal", "tiers": [{"from": "0", "rate": "1.1"}],
             "cap": "-1.00", "spiffs": [], "clawback_days": None, "override_rate": "-0.1"}
    assert _problems(ev.PlanRules, rules) == {
        "tiers.0.rate": "must be between 0 and 1",
        "cap": "must be >= 0",
        "override_rate": "must be between 0 and 1",
    }
    adjustment = {"adjustment_id": "a1", "participant_id": "p1", "period": "2026-13", "amount": "-0.00", "reason": "x"}
    assert _problems(ev.AdjustmentRecorded, adjustment) == {
        "period": "must be a period YYYY-MM (month) or YYYY-Qn (quarter)",
        "amount": "Value error, must not be zero",
    }


_FIGURES = st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=Decimal("-1e14"),
                       max_value=Decimal("1e14"))


@settings(max_examples=500)
@given(_FIGURES, st.none() | _FIGURES)
def test_the_views_figures_are_the_wires_text_as_decimals(credited: Decimal, target: Decimal | None) -> None:
    """The statement view stores `money_figure` and `attainment` (decision 136): the decimals whose
    text is exactly what the API shows (`money_str`, `attainment_str`), rounded half-up, with no
    "-0.00" (a credit under half a cent below zero is zero) and no exponent."""
    for value in (credited, -credited / 1000, Decimal("-0.004"), Decimal("0E+3")):
        assert str(money_figure(value)) == money_str(value)
    figure = attainment(credited, target)
    text = attainment_str(credited, target)
    assert (None if figure is None else str(figure)) == text
    assert (figure is None) == (target is None or target == 0)
