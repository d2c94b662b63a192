"""The log keeps no stored records in memory (decision 42): what reads them comes from the store."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

import ledger.appender
from api.app import create_app
from ledger.appender import EventIdReused
from ledger.events import DealBooked
from projections.book import Book
from replay.asof import Books
from replay.bootstrap import Services
from replay.whatif import what_if
from tests.support import ADMIN_TOKEN


def _register(person: str) -> dict[str, Any]:
    return {"event_id": f"reg-{person}", "type": "ParticipantRegistered",
            "data": {"participant_id": person, "name": person.upper(), "team_id": "t", "start_date": "2020-01-01"}}


def _deal(n: int, person: str = "r1", amount: str = "100.00") -> dict[str, Any]:
    return {"event_id": f"e-{n}", "type": "DealBooked",
            "data": {"deal_id": f"d-{n}", "booked_on": "2026-01-05", "amount": amount, "currency": "USD",
                     "credits": [{"participant_id": person, "share": "0.5"}, {"participant_id": "r2", "share": "0.5"}]}}


def test_records_at_scattered_positions_come_back_in_order(make_services: Callable[..., Services]) -> None:
    services = make_services()
    services.log.append([_register("r1"), _register("r2"), *(_deal(n) for n in range(8))])
    found = [(r.originator_version, r.topic) for r in services.store.read_positions([2, 5, 10])]
    assert found == [(2, "ledger.v1:ParticipantRegistered"), (5, "ledger.v1:DealBooked"), (10, "ledger.v1:DealBooked")]
    assert [r.event_id for r in services.log.records(3, 5)] == ["e-1", "e-2"]
    assert services.log.record_of("e-7") == services.log.records(9, 10)[0]
    assert services.log.record_of("nope") is None


def test_a_restarted_log_decides_replays_from_the_store(make_services: Callable[..., Services]) -> None:
    first = make_services()
    first.log.append([_register("r1"), _register("r2"), _deal(1), _deal(2)])
    assert first.books.head.position == 4 and not first.log.backlog  # folded, then dropped by the log
    again = make_services()
    [same] = again.log.append([_deal(2)])
    assert (same.position, same.duplicate) == (4, True)
    results = again.log.append([_deal(1), _deal(3), _deal(2)])
    assert [(r.position, r.duplicate) for r in results] == [(3, True), (5, False), (4, True)]
    try:
        again.log.append([_deal(1, amount="101.00")])
    except EventIdReused as error:
        assert error.event_id == "e-1"
    else:
        raise AssertionError("a reused event id with other content was accepted")
    assert again.store.head() == 5
    assert again.log.last is not None and again.log.last.event_id == "e-3"
    assert [r.hash for r in again.store.read(4, 5)] == [again.log.last.hash]


def test_what_if_of_a_deal_or_an_amendment_answers_on_a_log_that_keeps_no_parsed_events(
    make_services: Callable[..., Services],
) -> None:
    """The log drops parsed events once the books have them; a what-if of a new deal or of an
    amendment works on a copy of the books (decisions 93 and 95, the amended deal the copy's own)
    and answers as folding them for real would."""
    services = make_services()
    plan = {"event_id": "plan", "type": "PlanPublished", "data": {
        "plan_id": "p", "effective_from": "2020-01-01", "rules": {
            "period": "month", "basis": "booking", "tier_method": "marginal",
            "tiers": [{"from": "0", "rate": "0.1"}], "cap": None, "spiffs": [], "clawback_days": None,
            "override_rate": "0"}}}
    assign = [{"event_id": f"a-{p}", "type": "PlanAssigned",
               "data": {"participant_id": p, "plan_id": "p", "effective_from": "2020-01-01"}} for p in ("r1", "r2")]
    services.log.append([_register("r1"), _register("r2"), plan, *assign, _deal(1), _deal(2, amount="300.00")])
    amend = {"event_id": "amend", "type": "DealAmended",
             "data": {"deal_id": "d-2", "amount": "1300.00", "amended_on": "2026-01-20"}}
    for hypothetical in ([_deal(3, amount="1000.00")], [amend]):
        answer = what_if(services.log, services.books, hypothetical, ["2026-01"], ["r1"])
        [row] = answer["rows"]
        # r1 holds half of each deal at 10 %: 20.00 now, 70.00 with 1,000.00 more of deals.
        assert (row["total_now"], row["total_with"], row["difference"]) == ("20.00", "70.00", "50.00")
    assert services.store.head() == 7


def test_decoded_events_share_repeated_values_and_equal_validated_ones() -> None:
    """Shares, days and people's ids are one object each across decoded events (the state keeps them
    per deal), and so are equal credits (decision 72); amounts are not shared, and every decoded
    event equals the validated one."""
    from ledger.decode import decode_trusted
    from ledger.validation import parse_envelope

    first, second = (decode_trusted("DealBooked", _deal(n)["data"]) for n in (1, 2))
    assert isinstance(first, DealBooked) and isinstance(second, DealBooked)
    (one, other), (two, another) = first.credits, second.credits
    assert one.share is two.share and one.participant_id is two.participant_id
    assert one is two and other is another is not one
    assert first.booked_on is second.booked_on
    # Optional ids are one object each too (decision 76); strings made at run time, as a parser's are.
    made = [decode_trusted("DealBooked", {**_deal(n)["data"], "product": "".join(["widget", "-pro"])}) for n in (1, 2)]
    assert isinstance(made[0], DealBooked) and isinstance(made[1], DealBooked)
    assert made[0].product == "widget-pro" and made[0].product is made[1].product
    assert first.amount == second.amount and first.amount is not second.amount
    for n, event in ((1, first), (2, second)):
        validated = parse_envelope({"event_id": "x", "type": "DealBooked", "data": _deal(n)["data"]})
        assert not isinstance(validated, list)
        assert event == validated.event


def test_the_books_fold_appends_once_they_pause_without_a_read(make_services: Callable[..., Services]) -> None:
    """The follower thread (decisions 34 and 41) takes what the log accepted once appends pause."""
    services = make_services()
    services.log.append([_register("r1"), _register("r2"), *(_deal(n) for n in range(5))])
    deadline = time.monotonic() + 10
    while services.log.backlog and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not services.log.backlog  # taken by the follower: no read asked for them
    assert services.books.head.position == 7
    services.log.append([_deal(5)])
    while services.log.backlog and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not services.log.backlog and services.books.head.position == 8


#: What counts as a pause in the tests of how a stream is classified. An append the machine stalls
#: for `_QUIET` (0.2 s: a slow commit on a busy CI machine) is a pause, and the follower rightly folds
#: in it; those tests are about the stream, so a pause there must be far longer than any stall.
_STALL = 1.0


def _stream(
    services: Services, first: int, per_append: int, pause: float
) -> tuple[Callable[[], None], list[int]]:
    """A thread appending `per_append` deals every `pause` seconds until `stop()`, which returns
    once its last append is stored; the list holds how many it appended."""
    done = threading.Event()
    appended = [0]

    def run() -> None:
        while not done.is_set():
            n = first + appended[0]
            services.log.append([_deal(n + k) for k in range(per_append)])
            appended[0] += per_append
            time.sleep(pause)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def stop() -> None:
        done.set()
        thread.join(timeout=30)

    return stop, appended


def test_the_books_follow_a_steady_stream_of_appends_without_a_read(
    make_services: Callable[..., Services],
) -> None:
    """Appends that never pause for `_QUIET` but that the books can follow cheaply (single appends,
    decision 62) are folded as they go, about `_LAG` behind, without a read asking."""
    services = make_services()
    services.log.append([_register("r1"), _register("r2")])
    stop, appended = _stream(services, 1, 1, 0.01)
    try:
        deadline = time.monotonic() + 30
        while appended[0] < 150 and time.monotonic() < deadline:
            time.sleep(0.05)
        behind = services.log.backlog  # read without folding: what the follower has not taken
        assert appended[0] >= 100
        assert behind < appended[0] / 3, (behind, appended[0])
    finally:
        stop()


def test_the_books_measure_their_fold_rate(make_services: Callable[..., Services]) -> None:
    services = make_services()
    assert services.books.fold_rate is None  # nothing folded yet: the follower measures first
    services.log.append([_register("r1"), _register("r2"), *(_deal(n) for n in range(1, 9999))])
    started = time.monotonic()
    services.books.head  # noqa: B018
    spent = time.monotonic() - started
    rate = services.books.fold_rate
    assert rate is not None and rate >= 10000 / spent  # events per second spent folding


def test_a_backlog_drains_under_a_stream_within_the_followers_share_of_the_time(
    make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an import left waiting is folded while a stream goes on, `_DUTY` of the time at a time
    (at 2,000 events/s folding and a look a second here, 200 events a look): neither left for ever
    nor folded at once."""
    monkeypatch.setattr(Books, "fold_rate", property(lambda self: 2_000.0))
    monkeypatch.setattr("replay.asof._QUIET", _STALL)
    services = make_services()
    services.log.append([_register("r1"), _register("r2")])
    services.books.head  # noqa: B018 (fold the registrations: only the import below waits)
    services.log.append([_deal(n) for n in range(1, 1001)])
    stop, appended = _stream(services, 1001, 1, 0.05)
    try:
        time.sleep(3.2)
        behind = services.log.backlog
    finally:
        stop()
    assert 200 < behind < 1000 + appended[0] - 150, (behind, appended[0])


def test_an_import_is_not_followed_while_it_goes_on(
    make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream faster than `_DUTY` of the fold rate (here 50 events/s) is an import: the follower
    leaves it for a pause or a read, so that the appends keep the CPU."""
    monkeypatch.setattr(Books, "fold_rate", property(lambda self: 500.0))
    monkeypatch.setattr("replay.asof._QUIET", _STALL)
    services = make_services()
    services.log.append([_register("r1"), _register("r2")])
    services.books.head  # noqa: B018
    stop, appended = _stream(services, 1, 20, 0.02)
    try:
        time.sleep(2.5)
        behind, taken = services.log.backlog, appended[0]
    finally:
        stop()
    assert taken >= 300 and behind >= taken - 20, (behind, taken)  # nothing folded (one batch in flight)
    services.books.head  # noqa: B018
    assert not services.log.backlog


def test_a_fold_in_a_pause_stops_when_appends_resume(
    make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The follower folds a backlog once appends pause, a chunk at a time, and gives the CPU back
    to appends as soon as they resume (here an import: faster than `_DUTY` of the fold rate)."""
    monkeypatch.setattr(Books, "fold_rate", property(lambda self: 500.0))
    apply = Book.apply

    def slow_apply(book: Book, position: int, event_id: str, event: Any) -> None:
        time.sleep(0.0002)  # 0.4 s a chunk of 2,000, 4 s for the whole backlog
        apply(book, position, event_id, event)

    services = make_services()
    services.log.append([_register("r1"), _register("r2")])
    services.books.head  # noqa: B018
    monkeypatch.setattr(Book, "apply", slow_apply)
    services.log.append([_deal(n) for n in range(1, 10_001)])
    services.log.append([_deal(n) for n in range(10_001, 20_001)])
    deadline = time.monotonic() + 30
    while services.books.folded <= 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert services.books.folded > 2  # the pause began a fold
    stop, _ = _stream(services, 30_001, 20, 0.02)
    try:
        time.sleep(1.0)  # the chunk under way ends (0.4 s at most)
        stopped_at = services.books.folded
        time.sleep(2.0)
        # Nothing more, or one chunk if a starved test thread left a pause (without the check
        # between chunks, about 6,400 more).
        assert stopped_at < 12_000 and services.books.folded - stopped_at <= 2_000, (stopped_at, services.books.folded)
    finally:
        stop()
    monkeypatch.setattr(Book, "apply", apply)
    services.books.head  # noqa: B018
    assert not services.log.backlog


def test_readyz_says_how_far_the_books_have_folded(
    make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`folded_head` trails `projected_head` until something folds: here only a read does."""
    monkeypatch.setattr("replay.asof._QUIET", 60.0)  # the follower waits for a pause it never sees
    services = make_services()
    with TestClient(create_app(services)) as client:
        services.log.append([_register("r1"), _register("r2"), _deal(1)])
        ready = client.get("/readyz").json()
        assert (ready["stored_head"], ready["projected_head"], ready["folded_head"]) == (3, 3, 0)
        read = client.get("/v1/statements/r1/2026-01", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert read.status_code == 200, read.text
        assert client.get("/readyz").json()["folded_head"] == 3


def test_the_followers_budget() -> None:
    from replay.asof import _CHUNK, stream_budget

    assert stream_budget(3_000, 0.6, 100_000) == 6_000  # a tenth of 0.6 s at 100,000 events/s
    assert stream_budget(10_000, 0.6, 100_000) == 6_000
    assert stream_budget(10_001, 0.6, 100_000) == 0  # an import
    assert stream_budget(50, 0.6, None) == _CHUNK  # no rate measured yet: one chunk measures it


_PLAN = {"event_id": "plan", "type": "PlanPublished", "data": {
    "plan_id": "p", "effective_from": "2020-01-01", "rules": {
        "period": "month", "basis": "booking", "tier_method": "marginal",
        "tiers": [{"from": "0", "rate": "0.1"}], "cap": None, "spiffs": [], "clawback_days": None,
        "override_rate": "0"}}}
_SETUP = [_register("r1"), _register("r2"), _PLAN, *(
    {"event_id": f"a-{p}", "type": "PlanAssigned", "data": {"participant_id": p, "plan_id": "p",
                                                             "effective_from": "2020-01-01"}} for p in ("r1", "r2"))]


def _totals(services: Services) -> list[tuple[int, str, str]]:
    with services.books.reading():
        head = services.books.head
        return [(head.position, p, str(head.view().statement(p, "2026-01").total)) for p in ("r1", "r2")]


def test_an_import_past_the_backlog_bound_is_read_back_from_the_store(
    make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log holds at most `BACKLOG_MAX` parsed events for the books (decision 52); past it,
    the books read them back from the store, and fold exactly what a fresh start folds."""
    monkeypatch.setattr(ledger.appender, "BACKLOG_MAX", 4)
    services = make_services()
    services.log.append(_SETUP)
    for n in range(0, 30, 3):
        services.log.append([_deal(n), _deal(n + 1), _deal(n + 2, amount="250.00")])
        assert len(services.log.unfolded) <= 4
    assert services.log.head == 35
    # 20 deals of 100.00 and 10 of 250.00, half each, at 10 %: 225.00 each.
    assert _totals(services) == [(35, "r1", "225.00"), (35, "r2", "225.00")]
    assert services.log.backlog == 0
    services.log.append([_deal(30)])  # caught up: handed over in memory again
    assert len(services.log.unfolded) == services.log.backlog  # 1, or 0 if the follower took it
    assert _totals(services) == _totals(make_services()) == [(36, "r1", "230.00"), (36, "r2", "230.00")]


def test_appends_go_on_while_the_books_read_back_what_was_dropped(
    make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads fold while another thread appends past the bound over and over: no event is
    skipped or folded twice (the book checks every position follows the one before)."""
    monkeypatch.setattr(ledger.appender, "BACKLOG_MAX", 4)
    services = make_services()
    services.log.append(_SETUP)
    errors: list[BaseException] = []

    def append() -> None:
        try:
            for n in range(0, 120, 2):
                services.log.append([_deal(n), _deal(n + 1)])
        except BaseException as error:  # reported by the test itself
            errors.append(error)

    writer = threading.Thread(target=append)
    writer.start()
    seen = []
    while writer.is_alive():
        seen.append(_totals(services)[0][0])
    writer.join()
    assert not errors
    assert seen == sorted(seen)
    assert _totals(services) == _totals(make_services()) == [(125, "r1", "600.00"), (125, "r2", "600.00")]


def test_a_failed_fold_stops_every_read_and_loses_no_event(
    make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event the books cannot fold (a bug) may be half applied: every read from then on answers
    500 `books_failed` naming its position, never figures without it, and the health checks 503;
    appends go on, and after a restart the books fold it (nothing accepted is lost)."""
    services = make_services()
    services.log.append([*_SETUP, _deal(1)])
    assert services.books.head.position == 6
    original = Book.apply

    def apply(book: Book, position: int, event_id: str, event: Any) -> None:
        original(book, position, event_id, event)
        if event_id == "e-2":
            raise RuntimeError("a bug in the fold")

    monkeypatch.setattr(Book, "apply", apply)
    services.log.append([_deal(2), _deal(3)])
    with TestClient(create_app(services)) as client:
        for _ in range(2):  # the first read meets the failure (or the follower did), the second its record
            response = client.get("/v1/statements/r1/2026-01", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            assert response.status_code == 500, response.text
            assert response.json()["error"] == "books_failed"
            assert "position 7 (RuntimeError; its message is in the service's log)" in response.json()["message"]
            assert "a bug in the fold" not in response.text
        for probe in ("/healthz", "/readyz"):  # only a restart clears it: an orchestrator should restart
            response = client.get(probe)
            assert (response.status_code, response.json()["error"]) == (503, "books_failed"), probe
            assert "a bug in the fold" not in response.text, probe
        services.log.append([_deal(4)])  # appends go on
    assert services.store.head() == 9
    monkeypatch.setattr(Book, "apply", original)
    again = make_services()
    with again.books.reading():
        # r1's half of four 100.00 deals, at the plan's 10 %
        assert again.books.head.statement("r1", "2026-01").total == Decimal("20.00")


def test_the_follower_outlives_an_error_outside_the_fold(
    make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error while the follower takes events (not while folding one) is logged, and it goes on
    following: otherwise every later read would pay for folding whatever was appended since."""
    services = make_services()
    services.log.append(_SETUP)
    assert services.books.head.position == 5
    raised: list[str] = []
    original = services.log.take

    def take(limit: int | None = None) -> list[Any]:
        if not raised:
            raised.append("once")
            raise RuntimeError("once")
        return original(limit)

    monkeypatch.setattr(services.log, "take", take)
    services.log.append([_deal(1)])
    deadline = time.monotonic() + 10
    while not raised and time.monotonic() < deadline:
        time.sleep(0.05)
    assert raised and services.log.backlog == 1
    services.log.append([_deal(2)])
    while services.log.backlog and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not services.log.backlog  # taken by the follower, after its failure: no read asked


def test_a_read_between_a_commit_and_its_hand_over_names_no_position_the_books_lack(
    make_services: Callable[..., Services],
) -> None:
    """Reads take the log's head and times without its lock. A read that ran after a commit had
    moved the head but before it handed the events to the books answered "as of" the new head
    with the books short of it (and a what-if of no new events failed): the head now moves last.
    Such a read is made here at that very moment, from the hand-over itself."""
    import sys
    from datetime import UTC, datetime

    services = make_services()
    log, books = services.log, services.books
    log.append([_register("r1"), _register("r2")])
    real = log._handover
    seen: list[tuple[int, int, int, int]] = []

    def read() -> None:
        """A read as a statement makes it, by the head or by a time, and what the books hold."""
        head = log.head
        by_time = books.position_at_time(datetime(9999, 1, 1, tzinfo=UTC))
        view = books.at(max(head, by_time))
        seen.append((head, by_time, view.position, books.folded))

    class ReadFirst:
        """The hand-over's lock, with a read made just before `_accept` takes it."""

        def __enter__(self) -> object:
            if sys._getframe(1).f_code.co_name == "_accept" and log.head >= 2:
                read()
            return real.__enter__()

        def __exit__(self, *exc: Any) -> None:
            real.__exit__(*exc)

    class ReadAfter(list[str]):
        """The log's times, with a read made as soon as a batch's are added (before the head)."""

        def extend(self, times: Any) -> None:
            super().extend(times)
            if log.head >= 2:
                read()

    log._handover = ReadFirst()  # type: ignore[assignment]
    log.times = ReadAfter(log.times)
    try:
        log.append([_deal(n) for n in range(5)])
        answer = what_if(log, books, [], ["2026-01"], ["r1"])  # no new events: as of the head
    finally:
        log._handover = real
    # Before the hand-over: the head, the times and the books all before the batch. After its times
    # are added: the time names the batch's last position, and the books fold that far to read it.
    assert seen == [(2, 2, 2, 2), (2, 7, 7, 7)]
    assert answer["as_of_position"] == 7 and books.folded == 7
