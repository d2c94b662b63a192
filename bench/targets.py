"""The issue's targets, judged against one run's figures (`python -m bench` prints the verdicts).

Each target is checked only against figures of the same run: the ratios compare the service with
baselines measured in that run, as the targets state them, because the host's speed moves by
10-30 % (and more between machines). A run that did not measure a figure says so rather than
passing or failing its check.
"""

from __future__ import annotations

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


def _check(
    figures: Figures, target: str, asks: str, keys: tuple[str, ...],
    measure: Callable[..., float], show: Callable[[float], str], meets: Callable[[float], bool],
) -> Check:
    values = [figures.get(key) for key in keys]
    if not all(isinstance(value, int | float) for value in values):
        return Check(target, asks, "not measured", None)
    value = measure(*values)
    return Check(target, asks, show(value), meets(value))


def _rebuild(figures: Figures, target: str, prefix: str) -> list[Check]:
    """The rebuild target's four bounds, for the rebuild whose figures start with `prefix`."""
    return [
        _check(figures, target, f"≥ {REBUILD_EPS:,} events/s", (f"{prefix}_eps",),
               lambda eps: eps, lambda eps: f"{eps:,.0f} events/s", lambda eps: eps >= REBUILD_EPS),
        _check(figures, target, f"≥ {REBUILD_RAW_RATIO}x the raw read", (f"{prefix}_eps", "raw_read_decode_eps"),
               lambda eps, raw: eps / raw, lambda r: f"{r:.2f}x", lambda r: r >= REBUILD_RAW_RATIO),
        _check(figures, target, f"≤ {REBUILD_SQL_RATIO}x the SQL recompute's time", (f"{prefix}_s", "sql_recompute_s"),
               lambda s, sql: s / sql, lambda r: f"{r:.1f}x", lambda r: r <= REBUILD_SQL_RATIO),
        _check(figures, target, f"peak ≤ {REBUILD_MB:,} MB", (f"{prefix}_peak_rss_mb",),
               lambda mb: mb, lambda mb: f"{mb:,.0f} MB", lambda mb: mb <= REBUILD_MB),
    ]


def _bound(figures: Figures, target: str, key: str, most: float, unit: str) -> Check:
    """A figure that must be at most `most`."""
    return _check(figures, target, f"≤ {most:,} {unit}", (key,),
                  lambda value: value, lambda value: f"{value:,.2f} {unit}", lambda value: value <= most)


def checks(figures: Figures) -> list[Check]:
    """Every bound of the issue's six targets, judged against one run's figures (`python -m bench`'s
    JSON line). The view's rebuild is judged as the start-up fold is: it is a projection too. With
    two workers its memory is the process's peak and the worker's own pages together."""
    return [
        _check(figures, "1. single appends", f"≥ {SINGLE_EPS:,} events/s", ("single_append_eps",),
               lambda eps: eps, lambda eps: f"{eps:,.0f} events/s", lambda eps: eps >= SINGLE_EPS),
        _bound(figures, "1. single appends", "single_append_p99_ms", SINGLE_P99_MS, "ms p99"),
        _check(figures, "2. batch appends", f"≥ {BATCH_EPS:,} events/s", ("batch_append_eps",),
               lambda eps: eps, lambda eps: f"{eps:,.0f} events/s", lambda eps: eps >= BATCH_EPS),
        _check(figures, "2. batch appends", f"≥ {BATCH_RATIO}x the library's", ("batch_append_eps", "lib_batch_eps"),
               lambda eps, lib: eps / lib, lambda r: f"{r:.2f}x", lambda r: r >= BATCH_RATIO),
        *_rebuild(figures, "3. rebuild (start-up fold)", "rebuild"),
        *_rebuild(figures, "3. rebuild (statement view)", "view_rebuild"),
        _check(figures, "3. the same, 2 workers", f"≤ {REBUILD_SQL_RATIO}x the SQL recompute's time",
               ("view_rebuild_2w_s", "sql_recompute_s"), lambda s, sql: s / sql, lambda r: f"{r:.1f}x",
               lambda r: r <= REBUILD_SQL_RATIO),
        _check(figures, "3. the same, 2 workers", f"peak + worker's ≤ {REBUILD_MB:,} MB",
               ("view_rebuild_2w_peak_rss_mb", "view_rebuild_2w_worker_mb"), lambda mb, worker: mb + worker,
               lambda mb: f"{mb:,.0f} MB", lambda mb: mb <= REBUILD_MB),
        _bound(figures, "4. statement", "statement_p99_ms", STATEMENT_P99_MS, "ms p99"),
        _bound(figures, "4. ranking of a team", "ranking_p99_ms", RANKING_P99_MS, "ms p99"),
        _bound(figures, "4. ranking, service just started", "ranking_cold_p99_ms", RANKING_P99_MS, "ms p99"),
        _bound(figures, "4. as-of statement", "asof_p99_ms", ASOF_P99_MS, "ms p99"),
        _bound(figures, "5. what-if", "whatif_s", WHATIF_S, "s"),
        _bound(figures, "6. read-your-writes", "ryw_p99_ms", RYW_P99_MS, "ms p99"),
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
