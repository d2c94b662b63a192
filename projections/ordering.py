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

from collections.abc import Sequence
from decimal import Context, Decimal


def ratio_keys(pairs: Sequence[tuple[Decimal, Decimal | None]]) -> list[Decimal | None]:
    """numerator / denominator for each pair, rounded so that the keys order exactly as the
    ratios do; None where the denominator is None or zero."""
    low = high = width = 0
    for numerator, denominator in pairs:
        if not denominator or not numerator:
            continue
        top, bottom = numerator.as_tuple(), denominator.as_tuple()
        shift = int(top.exponent) - int(bottom.exponent)
        low = min(low, shift)
        high = max(high, shift + len(top.digits) - len(bottom.digits) + 1)
        width = max(width, len(bottom.digits))
    context = Context(prec=max(high - low + 2 * width + 2, 28))
    out: list[Decimal | None] = []
    for numerator, denominator in pairs:
        if not denominator:
            out.append(None)
        else:
            out.append(context.divide(numerator, denominator))
    return out
