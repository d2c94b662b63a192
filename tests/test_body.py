"""Reading request bodies: nesting, exact numbers, and the characters the contract refuses."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.body import MAX_DEPTH, BodyError, _check, _shape, parse_json


def _nest(depth: int, leaf: str) -> bytes:
    return ("[" * (depth - 1) + leaf + "]" * (depth - 1)).encode()


@pytest.mark.parametrize("escape", ["", '"\\u00e9"'])
def test_nesting_is_refused_past_the_limit_with_or_without_escapes(escape: str) -> None:
    leaf = f"[1, {escape}]" if escape else "[1]"
    assert parse_json(_nest(MAX_DEPTH - 1, leaf)) is not None  # the 1 sits at depth MAX_DEPTH
    with pytest.raises(BodyError, match="nests deeper"):
        parse_json(_nest(MAX_DEPTH, leaf))


def test_json_floats_are_read_exactly_with_or_without_escapes() -> None:
    assert parse_json(b'{"a": [1, {"b": 0.1}]}') == {"a": [1, {"b": Decimal("0.1")}]}
    assert parse_json(b'{"a": "\\u00e9", "b": 2.50}') == {"a": "\u00e9", "b": Decimal("2.50")}
    assert parse_json(b"1.25") == Decimal("1.25")


def test_integers_of_any_length_are_read_exactly() -> None:
    """Past 64 bits orjson refuses them; past 4,300 digits Python's `int` does: a Decimal then."""
    assert parse_json(b'{"a": 18446744073709551616}') == {"a": 18446744073709551616}
    long = "-" + "7" * 5000
    value = parse_json(f'{{"a": [{long}]}}'.encode())["a"][0]
    assert isinstance(value, Decimal) and value == Decimal(long)
    # Read again for the long integer, a constant is still refused.
    with pytest.raises(BodyError, match="NaN is not valid JSON"):
        parse_json(b"[" + b"7" * 4301 + b", NaN]")


def test_exponents_beyond_any_decimal_are_read_as_the_nearest_it_holds() -> None:
    raw = b"[1e9999999999999999999, -2E+9999999999999999999, 3e-9999999999999999999, -4.5e-9999999999999999999]"
    assert [str(number) for number in parse_json(raw)] == ["Infinity", "-Infinity", "0", "-0"]


def test_nul_and_lone_surrogates_come_only_from_escapes_and_are_refused() -> None:
    for raw in (b'{"a": "x\\u0000"}', b'{"a\\ud800": 1}', b'[["\\udc00"]]'):
        with pytest.raises(BodyError, match="NUL character or a lone surrogate"):
            parse_json(raw)
    assert parse_json(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}


def _outcome(walk: Any, value: Any) -> Any:
    try:
        return walk(value, 1)
    except BodyError as error:
        return (error.status, error.message)


_texts = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))
_leaves = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), _texts)
_values = st.recursive(_leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(_texts, inner, max_size=4)),
                       max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(_values, st.integers(min_value=0, max_value=40))
def test_the_container_walk_agrees_with_the_full_walk(value: Any, wrap: int) -> None:
    """What orjson read without a NUL escape gets the same answer from the shorter walk (decision 48)."""
    for _ in range(wrap):
        value = [value]
    if isinstance(value, dict | list):
        assert _outcome(_shape, value) == _outcome(_check, value)
        assert _outcome(lambda v, d: parse_json(orjson.dumps(v)) is not None, value) in (
            True, (400, f"the JSON nests deeper than {MAX_DEPTH} levels"))
