"""Ranking keys order and tie exactly as the exact ratios (fractions) do."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from random import Random

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.book import Row, rank
from projections.ordering import ratio_keys

# Coefficients up to 30 digits and exponents from -12 to 6: shares with many digits times amounts.
_decimals = st.builds(
    lambda sign, coefficient, exponent: Decimal((sign, tuple(int(d) for d in str(coefficient)), exponent)),
    st.integers(0, 1),
    st.integers(0, 10**30),
    st.integers(-12, 6),
)
_pairs = st.lists(st.tuples(_decimals, st.one_of(st.none(), _decimals)), max_size=40)


@settings(max_examples=1500)
@given(_pairs)
def test_keys_compare_as_the_exact_ratios(pairs: list[tuple[Decimal, Decimal | None]]) -> None:
    keys = ratio_keys(pairs)
    exact = [None if not d else Fraction(n) / Fraction(d) for n, d in pairs]
    assert [k is None for k in keys] == [e is None for e in exact]
    known = [(k, e) for k, e in zip(keys, exact, strict=True) if k is not None and e is not None]
    for k1, e1 in known:
        for k2, e2 in known:
            assert (k1 < k2) == (e1 < e2) and (k1 == k2) == (e1 == e2)


@settings(max_examples=500)
@given(st.integers(1, 10**15), st.integers(1, 10**15), st.integers(1, 10**15), st.integers(-1, 1),
       st.integers(-8, 4), st.integers(-8, 4))
def test_near_equal_ratios_keep_their_order(n: int, d: int, k: int, nudge: int, e1: int, e2: int) -> None:
    """n/d against (n*k + nudge)/(d*k): equal, or apart by less than one part in 10**28."""
    a = (Decimal(f"{n}E{e1}"), Decimal(f"{d}E{e2}"))  # exact: scaleb would round to 28 digits
    b = (Decimal(f"{n * k + nudge}E{e1}"), Decimal(f"{d * k}E{e2}"))
    ka, kb = ratio_keys([a, b])
    assert ka is not None and kb is not None
    assert (ka < kb, ka == kb) == (nudge > 0, nudge == 0)


@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(-1, 10**4)), max_size=30))
def test_rank_matches_fraction_ranking(figures: list[tuple[int, int]]) -> None:
    rows = [
        Row.of(f"p{i:03d}", "t", None if t < 0 else Decimal(t).scaleb(-2), Decimal(c).scaleb(-3))
        for i, (c, t) in enumerate(figures)
    ]

    def exact(row: Row) -> Fraction | None:
        return Fraction(row.credited) / Fraction(row.target) if row.target else None

    expected = sorted(rows, key=lambda r: (exact(r) is None, -(exact(r) or 0), -r.credited, r.participant_id))
    places: list[tuple[int, str]] = []
    for i, row in enumerate(expected):
        tied = i and (exact(expected[i - 1]), expected[i - 1].credited) == (exact(row), row.credited)
        places.append((places[-1][0] if tied else i + 1, row.participant_id))
    assert [(place, row.participant_id) for place, row in rank(rows)] == places


def test_ties_of_equal_ratios_written_differently_share_a_place() -> None:
    rows = [Row.of("a", "t", Decimal("200"), Decimal("100.0")), Row.of("b", "t", Decimal("2.00E2"), Decimal("100")),
            Row.of("c", "t", Decimal("300"), Decimal("100.000000000000000000000000000000001"))]
    assert [(place, row.participant_id) for place, row in rank(rows)] == [(1, "a"), (1, "b"), (3, "c")]


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(-1, 6)), max_size=30), st.randoms(use_true_random=False))
def test_rank_does_not_depend_on_the_order_rows_come_in(figures: list[tuple[int, int]], rng: Random) -> None:
    """Ties (many, with figures this small) keep participant order whatever order `rank` is given."""
    rows = [Row.of(f"p{i:03d}", "t", None if t < 0 else Decimal(t), Decimal(c)) for i, (c, t) in enumerate(figures)]
    shuffled = rows[:]
    rng.shuffle(shuffled)
    expected = [(place, row.participant_id) for place, row in rank(rows)]
    assert [(place, row.participant_id) for place, row in rank(shuffled)] == expected


def test_rows_are_equal_when_their_facts_are_whatever_their_digits() -> None:
    """As a frozen dataclass of the four facts: equal figures written otherwise are equal rows."""
    row, same = Row.of("a", "t", Decimal("1.0"), Decimal("2")), Row.of("a", "t", Decimal("1"), Decimal("2.00"))
    assert row == same and hash(row) == hash(same)
    assert row != Row.of("a", "u", Decimal("1"), Decimal("2")) and row != Row.of("a", "t", None, Decimal("2"))
    assert (row.target_text, row.credited_text, row.attainment) == ("1.00", "2.00", "2.0000")
