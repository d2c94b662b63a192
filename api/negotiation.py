"""Which of a route's media types an `Accept` header asks for (RFC 9110 §12.5.1), decision 146.

A payroll export is CSV only when the client prefers it: `text/csv;q=0` refuses it, and
`application/json, text/csv;q=0.5` prefers JSON. A substring test answered CSV to both.
"""

from __future__ import annotations

from collections.abc import Sequence

_NO_RANGE = (0.0, -1, 0)


def _ranges(accept: str) -> list[tuple[str, str, float]]:
    """(type, subtype, q) of each well-formed media range, in the header's order; a range whose q is
    not a number from 0 to 1 is left out. Simpler than RFC 9110 where no client of a payroll export
    goes: a quoted parameter value holding `,` or `;` is split there, a second `q` replaces the first,
    and parameters other than `q` neither match nor make a range more exact."""
    out = []
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        kind, slash, sub = media.lower().partition("/")
        if not slash or not kind or not sub:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if 0.0 <= q <= 1.0:
            out.append((kind, sub, q))
    return out


def preferred(accept: str | None, offered: Sequence[str]) -> str:
    """The offered type the header weighs highest: by q, then by how exactly a range names it
    (`text/csv` over `text/*` over `*/*`), then by where that range stands in the header. The
    first offered when the header is absent or empty, names none of them, or refuses them all."""
    ranges = _ranges(accept or "")
    best, best_score = offered[0], _NO_RANGE
    for media in offered:
        kind, _, sub = media.partition("/")
        names = ((kind, sub), (kind, "*"), ("*", "*"))  # the ranges naming it, most exact first
        # The most exact range naming the type decides its q (RFC 9110: `text/csv;q=0` wins over `*/*`);
        # among equally exact ones, the first in the header.
        matched = [(2 - names.index((k, s)), -index, q) for index, (k, s, q) in enumerate(ranges) if (k, s) in names]
        if not matched:
            continue
        exactness, order, q = max(matched)
        score = (q, exactness, order)
        if q > 0 and score > best_score:
            best, best_score = media, score
    return best
