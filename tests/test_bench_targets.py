"""The benchmark judges a run against the issue's targets (`bench.targets`): every bound, with the
ratios taken against the baselines of the same run, a figure at a bound meeting it, and a figure
the run did not measure neither met nor missed."""

from __future__ import annotations

from bench.targets import Check, checks, table

#: The figures of the thirtieth session's last run (README, "The latest runs").
RUN: dict[str, float | int | str] = {
    "database": "postgresql", "events": 1000000, "participants": 10000, "batch_append_eps": 36230.41,
    "single_append_eps": 4820.29, "single_append_p99_ms": 23.99, "catch_up_read_ms": 23486.1,
    "statement_p99_ms": 4.41, "ranking_p99_ms": 6.03, "asof_p99_ms": 3.9, "whatif_s": 2.17, "ryw_p99_ms": 20.92,
    "ryw_load_eps": 3613.97, "lib_batch_eps": 18109.42, "raw_read_decode_eps": 204242.6, "rebuild_s": 23.94,
    "rebuild_eps": 47272.02, "rebuild_peak_rss_mb": 819.31, "view_rebuild_s": 47.64, "view_rebuild_eps": 23754.26,
    "view_rebuild_peak_rss_mb": 785.15, "view_rebuild_2w_s": 47.75, "view_rebuild_2w_peak_rss_mb": 798.23,
    "view_rebuild_2w_worker_mb": 441.03, "sql_recompute_s": 6.67, "ranking_cold_p99_ms": 19.58,
}


def _by_ask(found: list[Check]) -> dict[tuple[str, str], tuple[str, bool | None]]:
    return {(c.target, c.asks): (c.measured, c.met) for c in found}


def test_a_run_is_judged_bound_by_bound_against_its_own_baselines() -> None:
    found = _by_ask(checks(RUN))
    assert found == {
        ("1. single appends", "≥ 3,000 events/s"): ("4,820 events/s", True),
        ("1. single appends", "≤ 50 ms p99"): ("23.99 ms p99", True),
        ("2. batch appends", "≥ 40,000 events/s"): ("36,230 events/s", False),
        ("2. batch appends", "≥ 3x the library's"): ("2.00x", False),
        ("3. rebuild (start-up fold)", "≥ 100,000 events/s"): ("47,272 events/s", False),
        ("3. rebuild (start-up fold)", "≥ 0.75x the raw read"): ("0.23x", False),
        ("3. rebuild (start-up fold)", "≤ 2x the SQL recompute's time"): ("3.6x", False),
        ("3. rebuild (start-up fold)", "peak ≤ 1,024 MB"): ("819 MB", True),
        ("3. rebuild (statement view)", "≥ 100,000 events/s"): ("23,754 events/s", False),
        ("3. rebuild (statement view)", "≥ 0.75x the raw read"): ("0.12x", False),
        ("3. rebuild (statement view)", "≤ 2x the SQL recompute's time"): ("7.1x", False),
        ("3. rebuild (statement view)", "peak ≤ 1,024 MB"): ("785 MB", True),
        ("3. the same, 2 workers", "≤ 2x the SQL recompute's time"): ("7.2x", False),
        ("3. the same, 2 workers", "peak + worker's ≤ 1,024 MB"): ("1,239 MB", False),
        ("4. statement", "≤ 10 ms p99"): ("4.41 ms p99", True),
        ("4. ranking of a team", "≤ 20 ms p99"): ("6.03 ms p99", True),
        ("4. ranking, service just started", "≤ 20 ms p99"): ("19.58 ms p99", True),
        ("4. as-of statement", "≤ 100 ms p99"): ("3.90 ms p99", True),
        ("5. what-if", "≤ 3 s"): ("2.17 s", True),
        ("6. read-your-writes", "≤ 1,000 ms p99"): ("20.92 ms p99", True),
    }
    assert table(checks(RUN)).splitlines()[-1] == "10 of 20 checks met"


def test_a_figure_at_its_bound_meets_it_and_the_ratios_move_with_the_baselines() -> None:
    at_bounds = {**RUN, "batch_append_eps": 60_000.0, "lib_batch_eps": 20_000.0, "rebuild_eps": 100_000.0,
                 "raw_read_decode_eps": 400_000.0, "rebuild_s": 10.0, "sql_recompute_s": 5.0, "whatif_s": 3.0,
                 "rebuild_peak_rss_mb": 1024.0, "single_append_eps": 3000.0, "single_append_p99_ms": 50.0}
    found = _by_ask(checks(at_bounds))
    assert found[("2. batch appends", "≥ 40,000 events/s")] == ("60,000 events/s", True)
    assert found[("2. batch appends", "≥ 3x the library's")] == ("3.00x", True)
    assert found[("3. rebuild (start-up fold)", "≥ 100,000 events/s")] == ("100,000 events/s", True)
    assert found[("3. rebuild (start-up fold)", "≥ 0.75x the raw read")] == ("0.25x", False)
    assert found[("3. rebuild (start-up fold)", "≤ 2x the SQL recompute's time")] == ("2.0x", True)
    assert found[("3. rebuild (start-up fold)", "peak ≤ 1,024 MB")] == ("1,024 MB", True)
    assert found[("5. what-if", "≤ 3 s")] == ("3.00 s", True)
    assert found[("1. single appends", "≥ 3,000 events/s")] == ("3,000 events/s", True)
    assert found[("1. single appends", "≤ 50 ms p99")] == ("50.00 ms p99", True)
    # The same service against a library twice as fast in its run misses the ratio.
    faster_library = _by_ask(checks({**at_bounds, "lib_batch_eps": 40_000.0}))
    assert faster_library[("2. batch appends", "≥ 3x the library's")] == ("1.50x", False)


def test_a_figure_the_run_did_not_measure_is_neither_met_nor_missed() -> None:
    partial = {key: value for key, value in RUN.items() if key not in ("lib_batch_eps", "ranking_cold_p99_ms")}
    found = _by_ask(checks(partial))
    assert found[("2. batch appends", "≥ 3x the library's")] == ("not measured", None)
    assert found[("4. ranking, service just started", "≤ 20 ms p99")] == ("not measured", None)
    assert found[("2. batch appends", "≥ 40,000 events/s")] == ("36,230 events/s", False)
    lines = table(checks(partial)).splitlines()
    assert lines[0].split() == ["target", "asks", "measured", "met"]
    assert lines[-1] == "9 of 18 checks met"
    assert sum(1 for line in lines if line.endswith("  -")) == 2
