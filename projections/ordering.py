"""Exact ordering of attainment ratios without fractions (§6 rankings).

Ranking sorts by exact attainment, credited / target. `fractions.Fraction`
gives that, but its comparisons are Python code and a 500-person ranking made
thousands of them. Instead each ratio is divided once in `decimal` at a
precision chosen for the whole set so that the rounded quotients order, and
tie, exactly as the exact ratios do; comparing them is then done in C.

Why it is exact: write a ratio as r = m/n * 10**e with integer coefficients m, n
(n of at most N digits) and e the difference of the two exponents. Two distinct
ratios differ by at least 10**g / 10**(2N), g the least e of the set, and each
is below 10**G, G the greatest e + digits(m) - digits(n) + 1. A correctly rounded
quotient at precision P is off by less than 10**(G + 1 - P) / 2, so with
P = G - g + 2N + 2 two distinct ratios can neither swap nor meet, and equal
ratios round to the same quotient.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Context, Decimal

#: What a ratio contributes to the precision: (its e, its e + digits(m) - digits(n) + 1, digits(n)).
Shape = tuple[int, int, int]


def ratio_shape(numerator: Decimal, denominator: Decimal | None) -> Shape | None:
    """None when the ratio is zero or has no denominator (it needs no digits)."""
    if not denominator or not numerator:
        return None
    top, bottom = numerator.as_tuple(), denominator.as_tuple()
    shift = int(top.exponent) - int(bottom.exponent)
    return shift, shift + len(top.digits) - len(bottom.digits) + 1, len(bottom.digits)


def precision_for(shapes: Iterable[Shape | None]) -> int:
    """P = G - g + 2N + 2 over the set (at least 28)."""
    low = high = width = 0
    for shape in shapes:
        if shape is not None:
            low = min(low, shape[0])
            high = max(high, shape[1])
            width = max(width, shape[2])
    return max(high - low + 2 * width + 2, 28)


def ratio_divide(shapes: Iterable[Shape | None]) -> Callable[[Decimal, Decimal], Decimal]:
    """The division whose quotients order and tie exactly as the ratios of a set with these
    shapes do (`ratio_shape`): one context per set, since a `Context` takes keywords to make."""
    return Context(prec=precision_for(shapes)).divide


def ratio_keys(pairs: Sequence[tuple[Decimal, Decimal | None]]) -> list[Decimal | None]:
    """numerator / denominator for each pair, rounded so that the keys order exactly as the
    ratios do; None where the denominator is None or zero."""
    divide = ratio_divide(ratio_shape(n, d) for n, d in pairs)
    return [divide(n, d) if d else None for n, d in pairs]
