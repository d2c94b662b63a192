"""The hash chain's canonical JSON: the fast encoder gives exactly the documented bytes."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.records import canonical_bytes, canonical_json

_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=2000)
@given(_JSON)
def test_fast_canonical_bytes_are_the_documented_form(value: Any) -> None:
    assert canonical_bytes(value) == canonical_json(value).encode("utf-8")


def test_what_orjson_refuses_falls_back_to_the_standard_library() -> None:
    for value in ({"n": 2**70}, {"n": -(2**70)}, {"b": [10**30, "x"]}):
        assert canonical_bytes(value) == canonical_json(value).encode("utf-8")
