"""After an import the books compute everyone's attainment rows of the recent periods, so that the
rankings read next are found in the memo, not computed 500 rows at a time (decision 108)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from projections.book import Book, rank, recent_periods
from projections.state import LedgerState
from replay.bootstrap import Services

PEOPLE = ("r1", "r2", "r3", "r4")
MONTHS = [f"2026-{m:02d}" for m in range(1, 7)]


def _envelopes() -> list[dict[str, Any]]:
    """Four reps on two teams under one tiered plan, targets and deals in six months, the first
    five closed: 62 events."""
    out: list[dict[str, Any]] = [{"event_id": "plan", "type": "PlanPublished", "data": {
        "plan_id": "p", "effective_from": "2020-01-01", "rules": {
            "period": "month", "basis": "booking", "tier_method": "marginal",
            "tiers": [{"from": "0", "rate": "0.05"}, {"from": "1", "rate": "0.1"}], "cap": None, "spiffs": [],
            "clawback_days": None, "override_rate": "0"}}}]
    for i, person in enumerate(PEOPLE):
        out.append({"event_id": f"reg-{person}", "type": "ParticipantRegistered", "data": {
            "participant_id": person, "name": person.upper(), "team_id": f"t{i % 2}", "start_date": "2020-01-01"}})
        out.append({"event_id": f"as-{person}", "type": "PlanAssigned",
                    "data": {"participant_id": person, "plan_id": "p", "effective_from": "2020-01-01"}})
    for m, month in enumerate(MONTHS, 1):
        for i, person in enumerate(PEOPLE):
            out.append({"event_id": f"t-{person}-{month}", "type": "TargetSet",
                        "data": {"participant_id": person, "period": month, "amount": f"{1000 * (i + 1)}.00"}})
            out.append({"event_id": f"d-{person}-{month}", "type": "DealBooked", "data": {
                "deal_id": f"d-{person}-{month}", "booked_on": f"{month}-1{i}", "amount": f"{300 * (m + i)}.50",
                "currency": "USD", "credits": [{"participant_id": person, "share": "1"}]}})
        if m < len(MONTHS):
            out.append({"event_id": f"close-{month}", "type": "PeriodClosed", "data": {"period": month}})
    return out


def _ranked(book: Book, period: str, team: str) -> list[dict[str, Any]]:
    return [row.ranked_body(place) for place, row in rank(book.view().rows(period, team))]


def _without_follower(services: Services) -> Services:
    """Only the test's reads fold: the follower would race them to the import."""
    services.books.close()
    return services


def test_a_read_that_folds_an_import_warms_the_recent_periods_rankings(
    make_services: Callable[..., Services],
) -> None:
    services = _without_follower(make_services())
    services.books.warm_after = len(_envelopes())
    services.log.append(_envelopes())
    head = services.books.head  # the read's fold: 62 events, then the warm
    periods = recent_periods(head.state, head.position)
    assert periods == [f"2026-{m:02d}" for m in range(6, 0, -1)] + [f"2025-{m:02d}" for m in range(12, 6, -1)]
    computed = head.engine.computed
    assert computed == len(PEOPLE) * len(periods)  # a row per person and period, nothing else
    cold = _without_follower(make_services()).books.head  # folded at start-up: nothing warmed
    assert cold.engine.computed == 0
    for period in periods:
        for team in ("t0", "t1"):
            assert _ranked(head, period, team) == _ranked(cold, period, team)  # the same exact figures
    assert head.engine.computed == computed  # every ranking read was found, none computed
    assert _ranked(head, "2026-03", "t1") == [  # 1,200.50 of 2,000 (0.60025), 1,800.50 of 4,000 (0.450125)
        {"rank": 1, "participant_id": "r2", "team_id": "t1", "target": "2000.00", "credited": "1200.50",
         "attainment": "0.6003"},
        {"rank": 2, "participant_id": "r4", "team_id": "t1", "target": "4000.00", "credited": "1800.50",
         "attainment": "0.4501"},
    ]


def test_a_read_that_folds_less_than_an_import_warms_nothing(make_services: Callable[..., Services]) -> None:
    services = _without_follower(make_services())
    services.books.warm_after = len(_envelopes()) + 1
    services.log.append(_envelopes())
    head = services.books.head
    assert head.engine.computed == 0
    _ranked(head, "2026-06", "t0")
    assert head.engine.computed == 2  # the ranking computed its two rows itself


def test_the_follower_warms_the_rankings_once_an_import_pauses(make_services: Callable[..., Services]) -> None:
    """No read asks (`Books.head` would fold and warm itself): the follower folds the import once
    appends pause, then warms."""
    services = make_services()
    services.books.warm_after = 50
    services.log.append(_envelopes())
    engine = services.books._head.engine
    deadline = time.monotonic() + 30
    expected = len(PEOPLE) * 12  # twelve months, no quarter ever closed
    while services.books.folded < services.log.head or engine.computed < expected:
        assert time.monotonic() < deadline, "the follower did not warm the rankings"
        time.sleep(0.05)
    assert engine.computed == expected


def test_the_follower_warms_after_an_import_it_folded_in_parts(make_services: Callable[..., Services]) -> None:
    """Appends that pause and resume cut an import into parts the follower folds one at a time; it
    warms once they add up to `warm_after` events since it last warmed."""
    services = make_services()
    envelopes = _envelopes()
    services.books.warm_after = len(envelopes) - 10
    engine = services.books._head.engine

    def folded(count: int) -> None:
        deadline = time.monotonic() + 30
        while services.books.folded < count:
            assert time.monotonic() < deadline, "the follower did not fold the appends"
            time.sleep(0.05)

    services.log.append(envelopes[:30])
    folded(30)
    time.sleep(0.3)
    assert engine.computed == 0  # 30 events: not yet
    services.log.append(envelopes[30:])
    folded(len(envelopes))
    deadline = time.monotonic() + 30
    while engine.computed < len(PEOPLE) * 12:
        assert time.monotonic() < deadline, "the follower did not warm the rankings"
        time.sleep(0.05)


def test_a_warm_stops_when_asked_and_fills_at_most_half_the_memo(
    make_services: Callable[..., Services],
) -> None:
    services = _without_follower(make_services())
    services.books.warm_after = 10**9  # only the warms called here
    services.log.append(_envelopes())
    books = services.books
    assert books.head.engine.computed == 0
    assert books.warm(stop=lambda: True) == 0
    looks = iter(range(3))  # asked before each period: three go on, the fourth stops
    assert books.warm(stop=lambda: next(looks, None) is None) == 3 * len(PEOPLE)

    small = _without_follower(make_services(memo_lines=20)).books  # 20 // 2 // 4 people: two periods
    assert small.warm() == 2 * len(PEOPLE)
    assert small.warm() == 0  # found, not computed again
    assert small.folded == books.folded


def test_the_recent_periods_are_a_year_to_where_adjustments_land() -> None:
    state = LedgerState()
    assert recent_periods(state, 0) == []  # nothing closed: no period is known to be current
    state.apply(1, "c1", _close("2026-Q2"))
    assert recent_periods(state, 1) == ["2026-Q3", "2026-Q2", "2026-Q1", "2025-Q4"]
    state.apply(2, "c2", _close("0001-02"))
    assert recent_periods(state, 2) == ["0001-03", "0001-02", "0001-01", "2026-Q3", "2026-Q2", "2026-Q1", "2025-Q4"]
    assert recent_periods(state, 1) == ["2026-Q3", "2026-Q2", "2026-Q1", "2025-Q4"]  # as of a position
    last = LedgerState()
    last.apply(1, "c", _close("9999-12"))  # no period after it: the year up to it
    assert recent_periods(last, 1)[:2] == ["9999-12", "9999-11"] and len(recent_periods(last, 1)) == 12


def _close(period: str) -> Any:
    from ledger.events import PeriodClosed

    return PeriodClosed(period=period)
