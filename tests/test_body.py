"""Reading request bodies: nesting, exact numbers, and the characters the contract refuses."""

from __future__ import annotations

from decimal import Decimal

import pytest

from api.body import MAX_DEPTH, BodyError, parse_json


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


def test_nul_and_lone_surrogates_come_only_from_escapes_and_are_refused() -> None:
    for raw in (b'{"a": "x\\u0000"}', b'{"a\\ud800": 1}', b'[["\\udc00"]]'):
        with pytest.raises(BodyError, match="NUL character or a lone surrogate"):
            parse_json(raw)
    assert parse_json(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}
