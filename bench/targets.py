"""The issue's targets, judged against one run's figures (`python -m bench` prints the verdicts).

Each target is checked only against figures of the same run: the ratios compare the service with
baselines measured in that run, as the targets state them, because the host's speed moves by
10-30 % (and more between machines). A run that did not measure a figure says so rather than
passing or failing its check. A figure is shown rounded towards the side that misses its bound,
so a missed bound never shows the bound's own figure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

#: The issue's floors and bounds.
SINGLE_EPS, SINGLE_P99_MS = 3_000, 50
BATCH_EPS, BATCH_RATIO = 40_000, 3
REBUILD_EPS, REBUILD_RAW_RATIO, REBUILD_SQL_RATIO, REBUILD_MB = 100_000, 0.75, 2, 1024
STATEMENT_P99_MS, RANKING_P99_MS, ASOF_P99_MS = 10, 20, 100
WHATIF_S = 3
RYW_P99_MS = 1_000

Figures = Mapping[str, float | int | str]


@dataclass(frozen=True)
class Check:
    """One bound of a target: what it asks, what the run measured, and whether that meets it
    (None: the run has not the figures it needs)."""

    target: str
    asks: str
    measured: str
    met: bool | None


def _shown(value: float, digits: int, down: bool, unit: str) -> str:
    """`value` with `digits` decimals, rounded down (a floor's figure) or up (a ceiling's)."""
    scale = 10**digits
    rounded = (math.floor if down else math.ceil)(round(value * scale, 6)) / scale
    return f"{rounded:,.{digits}f}{unit}"


def _measured(figures: Figures, keys: tuple[str, ...]) -> list[float] | None:
    """The run's figures under `keys`; None if it lacks any."""
    numbers = [float(value) for key in keys if isinstance(value := figures.get(key), int | float)]
    return numbers if len(numbers) == len(keys) else None


def _judged(
    figures: Figures, target: str, asks: str, keys: tuple[str, ...], measure: Callable[..., float],
    bound: float, floor: bool, digits: int, unit: str,
) -> Check:
    """A figure made of the run's `keys` by `measure`, at least `bound` (`floor`) or at most it."""
    values = _measured(figures, keys)
    if values is None:
        return Check(target, asks, "not measured", None)
    try:
        value = measure(*values)
    except ZeroDivisionError:  # a baseline of nothing: no ratio to judge
        return Check(target, asks, "a baseline of 0", None)
    return Check(target, asks, _shown(value, digits, floor, unit), value >= bound if floor else value <= bound)


def _at_least(figures: Figures, target: str, key: str, bound: float, digits: int, unit: str) -> Check:
    return _judged(figures, target, f"≥ {bound:,}{unit}", (key,), float, bound, True, digits, unit)


def _at_most(figures: Figures, target: str, key: str, bound: float, digits: int, unit: str) -> Check:
    return _judged(figures, target, f"≤ {bound:,}{unit}", (key,), float, bound, False, digits, unit)


def _rebuild(figures: Figures, target: str, prefix: str, memory: Check | None = None) -> list[Check]:
    """The rebuild target's four bounds, for the rebuild whose figures start with `prefix`; its
    memory judged by `memory` if given, else by its peak."""
    return [
        _at_least(figures, target, f"{prefix}_eps", REBUILD_EPS, 0, " events/s"),
        _judged(figures, target, f"≥ {REBUILD_RAW_RATIO}x the raw read", (f"{prefix}_eps", "raw_read_decode_eps"),
                lambda eps, raw: eps / raw, REBUILD_RAW_RATIO, True, 2, "x"),
        _judged(figures, target, f"≤ {REBUILD_SQL_RATIO}x the SQL recompute's time", (f"{prefix}_s", "sql_recompute_s"),
                lambda s, sql: s / sql, REBUILD_SQL_RATIO, False, 2, "x"),
        memory or _judged(figures, target, f"peak ≤ {REBUILD_MB:,} MB", (f"{prefix}_peak_rss_mb",), float,
                          REBUILD_MB, False, 0, " MB"),
    ]


def _two_workers_memory(figures: Figures, target: str) -> Check:
    """The process's peak and its workers' own pages at their most: two maxima, perhaps of different
    moments, so their sum is only an upper bound of what the machine gave. Under the bound it meets
    it; the peak alone over it misses; in between the run cannot tell."""
    asks = f"peak + workers' ≤ {REBUILD_MB:,} MB"
    values = _measured(figures, ("view_rebuild_2w_peak_rss_mb", "view_rebuild_2w_worker_mb"))
    if values is None:
        return Check(target, asks, "not measured", None)
    peak, workers = values
    total = peak + workers
    met = True if total <= REBUILD_MB else (False if peak > REBUILD_MB else None)
    return Check(target, asks, f"at most {_shown(total, 0, False, ' MB')}", met)


def checks(figures: Figures) -> list[Check]:
    """Every bound of the issue's six targets, judged against one run's figures (`python -m bench`'s,
    before the JSON line rounds them). The view's rebuild is judged as the start-up fold is: it is a
    projection too. Read-your-writes counts only under target 1's load (its floor of single appends)."""
    return [
        _at_least(figures, "1. single appends", "single_append_eps", SINGLE_EPS, 0, " events/s"),
        _at_most(figures, "1. single appends", "single_append_p99_ms", SINGLE_P99_MS, 2, " ms p99"),
        _at_least(figures, "2. batch appends", "batch_append_eps", BATCH_EPS, 0, " events/s"),
        _judged(figures, "2. batch appends", f"≥ {BATCH_RATIO}x the library's", ("batch_append_eps", "lib_batch_eps"),
                lambda eps, lib: eps / lib, BATCH_RATIO, True, 2, "x"),
        *_rebuild(figures, "3. rebuild (start-up fold)", "rebuild"),
        *_rebuild(figures, "3. rebuild (statement view)", "view_rebuild"),
        *_rebuild(figures, "3. the same, 2 workers", "view_rebuild_2w",
                  _two_workers_memory(figures, "3. the same, 2 workers")),
        _at_most(figures, "4. statement", "statement_p99_ms", STATEMENT_P99_MS, 2, " ms p99"),
        _at_most(figures, "4. ranking of a team", "ranking_p99_ms", RANKING_P99_MS, 2, " ms p99"),
        _at_most(figures, "4. ranking, service just started", "ranking_cold_p99_ms", RANKING_P99_MS, 2, " ms p99"),
        _at_most(figures, "4. as-of statement", "asof_p99_ms", ASOF_P99_MS, 2, " ms p99"),
        _at_most(figures, "5. what-if", "whatif_s", WHATIF_S, 2, " s"),
        _at_most(figures, "6. read-your-writes", "ryw_p99_ms", RYW_P99_MS, 2, " ms p99"),
        _at_least(figures, "6. read-your-writes", "ryw_load_eps", SINGLE_EPS, 0, " events/s of load"),
    ]


def table(found: list[Check]) -> str:
    """The checks as aligned text, one per line, and how many were met."""
    rows = [("target", "asks", "measured", "met")] + [
        (c.target, c.asks, c.measured, {True: "yes", False: "NO", None: "-"}[c.met]) for c in found
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
             for row in rows]
    judged = [c for c in found if c.met is not None]
    lines.append(f"{sum(1 for c in judged if c.met)} of {len(judged)} checks met")
    return "\n".join(lines)
