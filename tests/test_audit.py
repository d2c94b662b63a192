"""Audit and replay through HTTP: chain, tampering, what-if, payouts, disputes, as-of time."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.routes import whatif as whatif_route
from cli import app as cli_app
from ledger.records import GENESIS_HASH, canonical_json, chain_hash
from ledger.settings import parse_database_url
from replay import whatif
from replay.bootstrap import Services
from replay.chain import verify
from replay.whatif import what_if
from tests.support import Api, eager_forks, watch_books


def _small_ledger(api: Api) -> None:
    api.participant("r1")
    api.participant("r2")
    api.plan("p", tiers=[("0", "0.05")])
    api.assign("r1", "p")
    api.assign("r2", "p")
    api.deal("a", "2026-01-10", "1000", "r1")
    api.deal("b", "2026-01-11", "3000", {"r1": "0.5", "r2": "0.5"})


def test_anyone_can_recompute_the_chain_from_the_listing(api: Api) -> None:
    _small_ledger(api)
    previous = GENESIS_HASH
    events = api.events()
    for event in events:
        public = {k: event[k] for k in ("position", "event_id", "type", "data", "recorded_at")}
        expected = hashlib.sha256((previous + canonical_json(public)).encode("utf-8")).hexdigest()
        assert event["hash"] == expected
        assert event["recorded_at"].endswith("Z") and len(event["recorded_at"]) == 27
        previous = expected
    verdict = api.get("/v1/audit/verify").json()
    assert verdict == {"ok": True, "events_checked": len(events), "head_hash": previous}


def _rewrite(database_url: str, position: int, change: Callable[[bytes], bytes]) -> None:
    """Replace the stored form of one event behind the service's back."""
    database = parse_database_url(database_url)
    if database.kind == "sqlite":
        with sqlite3.connect(database.env["SQLITE_DBNAME"]) as conn:
            (state,) = conn.execute(
                "SELECT state FROM ledger_events WHERE originator_version = ?", (position,)).fetchone()
            conn.execute("UPDATE ledger_events SET state = ? WHERE originator_version = ?",
                         (change(bytes(state)), position))
        return
    with psycopg.connect(database_url.split("?")[0], autocommit=True) as conn:
        row = conn.execute(
            f'SELECT state FROM "{database.schema}".ledger_events WHERE originator_version = %s', (position,)
        ).fetchone()
        assert row is not None
        conn.execute(f'UPDATE "{database.schema}".ledger_events SET state = %s WHERE originator_version = %s',
                     (change(bytes(row[0])), position))


def _edited(edit: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    """A change of the stored JSON's values, written back as JSON."""

    def change(state: bytes) -> bytes:
        body = json.loads(state)
        edit(body)
        return json.dumps(body).encode()

    return change


def _tamper(database_url: str, position: int) -> None:
    """Change the stored amount of one event behind the service's back."""
    _rewrite(database_url, position, _edited(lambda body: body["data"].update(amount="9999999.00")))


def test_tampering_with_a_stored_row_is_detected_at_its_position(api: Api, database_url: str) -> None:
    _small_ledger(api)
    deal_position = next(e["position"] for e in api.events() if e["event_id"] and e["type"] == "DealBooked")
    assert api.get("/v1/audit/verify").json()["ok"] is True
    _tamper(database_url, deal_position)
    verdict = api.get("/v1/audit/verify").json()
    assert verdict["ok"] is False
    assert verdict["first_bad_position"] == deal_position
    assert verdict["events_checked"] == deal_position - 1
    result = CliRunner().invoke(cli_app, ["verify"], env={"LEDGER_DATABASE_URL": database_url})
    assert result.exit_code == 1
    assert json.loads(result.output)["first_bad_position"] == deal_position


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda state: state[:-1], "the stored event cannot be read"),  # JSON cut short
        (_edited(lambda body: body.pop("hash")), "the stored event cannot be read"),
        (_edited(lambda body: body.update(type=7)), "the stored event cannot be read"),  # the log reads text
        (_edited(lambda body: body.update(position=body["position"] + 1)), "the stored position was changed"),
        (_edited(lambda body: body.update(recorded_at="2000-01-01T00:00:00.000000Z")),
         "the stored event does not match its hash"),
    ],
    ids=["cut", "no-hash", "type-not-text", "position", "recorded-at"],
)
def test_each_kind_of_damage_is_named_at_its_position(
    api: Api, database_url: str, change: Callable[[bytes], bytes], problem: str
) -> None:
    """The verdict names what is wrong with the first damaged row; the rows before it still count."""
    _small_ledger(api)
    events = api.events()
    deal = next(e for e in events if e["type"] == "DealBooked")
    _rewrite(database_url, deal["position"], change)
    verdict = verify(api.services.store)
    assert (verdict.ok, verdict.first_bad_position, verdict.problem, verdict.events_checked) == (
        False, deal["position"], problem, deal["position"] - 1)
    assert verdict.head_hash == events[deal["position"] - 2]["hash"]  # the last good row's


def test_the_chain_is_verified_while_appends_go_on(api: Api) -> None:
    """Rows stored while the verification reads are checked too, not taken for missing ones (the
    verification answered "expected position N + 1" for a ledger nobody had touched)."""
    _small_ledger(api)
    store = api.services.store
    real_read_rows = store.read_rows
    passes: list[int] = []

    def read_then_append(after: int, *args: Any, **options: Any) -> Any:
        yield from real_read_rows(after, *args, **options)
        if not options.get("ahead"):
            return  # the appends' own reads, and the listing's
        passes.append(after)
        if len(passes) == 1:  # as the verification's first pass ends, two deals are appended
            api.deal("late-1", "2026-01-12", "100", "r2")
            api.deal("late-2", "2026-01-12", "100", "r2")

    store.read_rows = read_then_append  # type: ignore[method-assign]
    verdict = verify(store)
    events = api.events()
    assert (verdict.ok, verdict.events_checked, verdict.head_hash) == (True, len(events), events[-1]["hash"])
    assert passes == [0, len(events) - 2]  # the second pass reads only what was appended


def _delete(database_url: str, position: int) -> None:
    database = parse_database_url(database_url)
    if database.kind == "sqlite":
        with sqlite3.connect(database.env["SQLITE_DBNAME"]) as conn:
            conn.execute("DELETE FROM ledger_events WHERE originator_version = ?", (position,))
        return
    with psycopg.connect(database_url.split("?")[0], autocommit=True) as conn:
        conn.execute(f'DELETE FROM "{database.schema}".ledger_events WHERE originator_version = %s', (position,))


def test_deleted_rows_are_detected_wherever_they_were(api: Api, database_url: str) -> None:
    """Also at a page boundary: reads go by position ranges, and a short page is not the end."""
    _small_ledger(api)
    head = api.services.store.head()
    assert head >= 6
    _delete(database_url, 3)  # the last row of the first page of three
    assert [position for position, _, _ in api.services.store.read_rows(0, page=3)] == [
        1, 2, *range(4, head + 1)]
    verdict = verify(api.services.store)
    assert (verdict.ok, verdict.first_bad_position, verdict.problem) == (False, 4, "expected position 3")


def test_a_whole_page_of_deleted_rows_is_named_at_its_first(api: Api, database_url: str) -> None:
    """An empty page ends a read; the verification, finding the head past it, names the first
    missing position (pages of three here, so that positions 4-6 are a whole page)."""
    _small_ledger(api)
    store = api.services.store
    assert store.head() >= 7
    for position in (4, 5, 6):
        _delete(database_url, position)
    real_read_rows = store.read_rows
    store.read_rows = lambda after, *args, **options: real_read_rows(after, page=3)  # type: ignore[method-assign]
    verdict = verify(store)
    assert (verdict.ok, verdict.first_bad_position, verdict.problem, verdict.events_checked) == (
        False, 4, "expected position 4", 3)


def test_rows_deleted_at_the_end_are_detected_by_the_service_that_stored_them(api: Api, database_url: str) -> None:
    """The store's head only says where its rows end: the service compares with the last event it
    stored (decision 127)."""
    _small_ledger(api)
    head = api.head()
    for position in (head, head - 1):
        _delete(database_url, position)
    assert verify(api.services.store).ok  # the store alone cannot tell
    verdict = api.get("/v1/audit/verify").json()
    assert (verdict["ok"], verdict["events_checked"], verdict["first_bad_position"], verdict["problem"]) == (
        False, head - 2, head - 1, f"expected position {head - 1}: this service stored {head} events")


def test_an_end_rewritten_with_a_chain_of_its_own_is_detected_by_the_service(api: Api, database_url: str) -> None:
    """The last deal's amount changed and its hash recomputed to fit: every row matches its hash,
    but not the hash the service stored at that position."""
    _small_ledger(api)
    events = api.events()
    last = events[-1]
    assert last["type"] == "DealBooked"

    def rechained(state: bytes) -> bytes:
        body = json.loads(state)
        body["data"]["amount"] = "1.00"
        public = {k: body[k] for k in ("event_id", "type", "data", "recorded_at")} | {"position": last["position"]}
        body["hash"] = chain_hash(events[-2]["hash"], public)
        return json.dumps(body).encode()

    _rewrite(database_url, last["position"], rechained)
    assert verify(api.services.store).ok
    verdict = api.get("/v1/audit/verify").json()
    assert (verdict["ok"], verdict["first_bad_position"], verdict["problem"]) == (
        False, last["position"], "the chain does not lead to the hash this service stored here")


@pytest.mark.parametrize("damage", ["deleted", "unknown-type", "position"])
def test_ledger_verify_names_damage_the_books_could_not_fold(api: Api, database_url: str, damage: str) -> None:
    """`ledger verify` reads only the store: it used to fold the log first, and a deleted row or an
    unknown type ended it with a traceback. Commands that need the books say so in one line."""
    _small_ledger(api)
    deal = next(e for e in api.events() if e["type"] == "DealBooked")
    if damage == "deleted":
        _delete(database_url, deal["position"])
        found, problem = deal["position"] + 1, f"expected position {deal['position']}"  # where the gap shows
    elif damage == "unknown-type":
        _rewrite(database_url, deal["position"], _edited(lambda body: body.update(type="DealBooked2")))
        found, problem = deal["position"], "the stored event does not match its hash"
    else:
        _rewrite(database_url, deal["position"], _edited(lambda body: body.update(position=body["position"] + 1)))
        found, problem = deal["position"], "the stored position was changed"
    result = CliRunner().invoke(cli_app, ["verify"], env={"LEDGER_DATABASE_URL": database_url})
    assert result.exit_code == 1, result.output
    verdict = json.loads(result.output)
    assert (verdict["ok"], verdict["first_bad_position"], verdict["problem"]) == (False, found, problem)
    said = {"deleted": "no event is stored there", "unknown-type": "the stored event cannot be read (KeyError)",
            "position": "the stored position was changed"}[damage]
    # `ledger rebuild` reads the store itself, with the same checks (`ledger.damage.checked_row`).
    commands = {"deleted": [["replay"], ["rebuild", "--view"]], "unknown-type": [["replay"], ["rebuild"]],
                "position": [["replay"], ["rebuild"]]}[damage]
    for command in commands:
        started = subprocess.run([sys.executable, "-m", "cli", *command], cwd=Path(__file__).parent.parent,
                                 env={**os.environ, "LEDGER_DATABASE_URL": database_url},
                                 capture_output=True, text=True, timeout=60)
        assert started.returncode == 1 and "Traceback" not in started.stderr, (command, started.stderr)
        assert started.stderr.endswith(f"error: the stored log is damaged at position {deal['position']}: {said}; "
                                       "`ledger verify` checks the stored chain\n"), (command, started.stderr)


def test_the_replay_audit_names_a_stored_row_it_cannot_read(api: Api, database_url: str) -> None:
    """A row cut short after the service read it: the audit's own read fails there (it answered 500)."""
    _small_ledger(api)
    api.close("2026-01")
    deal = next(e for e in api.events() if e["type"] == "DealBooked")
    _rewrite(database_url, deal["position"], lambda state: state[:-1])
    body = api.client.post("/v1/audit/replay", headers=api.headers).json()
    assert (body["ok"], body["statements_checked"], body["first_bad_position"]) == (False, 0, deal["position"])
    assert body["problem"].startswith("the stored event cannot be replayed (")


def test_ledger_verify_warns_of_a_ledger_with_no_event(tmp_path: Path) -> None:
    """A mistyped URL or schema finds an empty ledger: the chain of nothing is intact, and suspicious."""
    result = CliRunner().invoke(cli_app, ["verify"], env={"LEDGER_DATABASE_URL": f"sqlite:///{tmp_path}/new.db"})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[0])["events_checked"] == 0
    assert "warning: no event is stored at LEDGER_DATABASE_URL" in result.output


def test_the_replay_audit_names_a_stored_event_it_cannot_fold(api: Api, database_url: str) -> None:
    """A deal deleted behind the ledger's back that a later payment refers to: the audit's own fold
    fails there, and it answers where, with what it compared before (it answered 500)."""
    _small_ledger(api)
    api.close("2026-01")
    deal = next(e for e in api.events() if e["event_id"] and e["type"] == "DealBooked")
    payment = api.payment("pay-a", deal["data"]["deal_id"], "100", "2026-02-03")
    head = api.close("2026-02")
    _delete(database_url, deal["position"])
    response = api.client.post("/v1/audit/replay", headers=api.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["ok"], body["statements_checked"], body["first_bad_position"]) == (False, 2, payment)
    assert body["problem"].startswith("the stored event cannot be replayed (")
    assert body["as_of_position"] == head
    assert [(d["participant_id"], d["period"]) for d in body["differences"]] == [("r1", "2026-01")]


def test_what_if_shows_differences_and_stores_nothing(api: Api) -> None:
    _small_ledger(api)
    before = api.events()
    verdict_before = api.get("/v1/audit/verify").json()
    hypothetical = [
        {"event_id": "wi-1", "type": "PlanPublished",
         "data": {"plan_id": "p", "effective_from": "2026-01-01", "rules": {
             "period": "month", "basis": "booking", "tier_method": "marginal",
             "tiers": [{"from": "0", "rate": "0.08"}], "cap": None, "spiffs": [], "clawback_days": None,
             "override_rate": "0"}}},
        {"event_id": "wi-2", "type": "DealCancelled", "data": {"deal_id": "a", "cancelled_on": "2026-01-20"}},
    ]
    response = api.client.post("/v1/what-if", headers=api.headers, json={
        "events": hypothetical, "periods": ["2026-01"], "participant_ids": ["r1", "r2"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["as_of_position"] == len(before)
    rows = {row["participant_id"]: row for row in body["rows"]}
    # r1 now: 1000 x 5% + 1500 x 5% = 125; with: a cancelled, 1500 x 8% = 120.
    assert (rows["r1"]["total_now"], rows["r1"]["total_with"], rows["r1"]["difference"]) == (
        "125.00", "120.00", "-5.00")
    assert (rows["r2"]["total_now"], rows["r2"]["total_with"], rows["r2"]["difference"]) == (
        "75.00", "120.00", "45.00")
    changes = sorted((line["change"], line["deal_id"], line["amount"]) for line in rows["r1"]["lines"])
    assert changes == [("added", "b", "120.00"), ("removed", "a", "50.00"), ("removed", "b", "75.00")]
    assert api.events() == before
    assert api.get("/v1/audit/verify").json() == verdict_before


def test_what_if_workers_answer_as_one_process_would(api: Api, make_services: Callable[..., Services]) -> None:
    """`LEDGER_WHAT_IF_WORKERS` reaches the route: the rows shared with a forked worker are the rows
    one process gives, in the order asked for."""
    _small_ledger(api)
    api.deal("c", "2026-02-03", "700", "r2")
    body = {"events": [{"event_id": "wi-1", "type": "PlanPublished", "data": {
        "plan_id": "p", "effective_from": "2026-01-01", "rules": {
            "period": "month", "basis": "booking", "tier_method": "marginal", "tiers": [{"from": "0", "rate": "0.08"}],
            "cap": None, "spiffs": [], "clawback_days": None, "override_rate": "0"}}}],
        "periods": ["2026-01", "2026-02"], "participant_ids": ["r2", "r1"]}
    with TestClient(create_app(make_services(what_if_workers=1))) as client, eager_forks() as fork:
        one = client.post("/v1/what-if", headers=api.headers, json=body)
    assert not fork.called
    with TestClient(create_app(make_services(what_if_workers=2))) as client, eager_forks() as fork:
        shared = client.post("/v1/what-if", headers=api.headers, json=body)
    assert fork.called
    assert (one.status_code, shared.status_code) == (200, 200)
    assert shared.json() == one.json()
    assert [(row["participant_id"], row["total_with"]) for row in shared.json()["rows"]] == [
        ("r2", "120.00"), ("r2", "56.00"), ("r1", "200.00"), ("r1", "0.00")]


def test_the_hypothetical_book_is_dropped_after_the_what_if_answer_is_sent(
    api: Api, make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Freeing a large hypothetical book takes a while (decision 66): the answer does not wait for
    it, the event loop that sent it does not free it, and it does not outlive the request."""
    _small_ledger(api)
    books: list[weakref.ref[object]] = []
    alive_when_sent: list[bool] = []
    threads: dict[str, threading.Thread] = {}

    def recording(*args: Any, **options: Any) -> dict[str, Any]:
        answer = what_if(*args, **options)
        [book] = args[-1]  # what the route keeps for after the answer
        books.append(weakref.ref(book, lambda _: threads.setdefault("freed", threading.current_thread())))
        return answer

    def watching(app: Any) -> Any:
        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            async def watched(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.body" and not message.get("more_body") and books:
                    alive_when_sent.append(books[0]() is not None)
                    threads["sent"] = threading.current_thread()
                await send(message)

            await app(scope, receive, watched)

        return asgi

    monkeypatch.setattr("api.routes.whatif.what_if", recording)
    with TestClient(watching(create_app(make_services()))) as client:
        response = client.post("/v1/what-if", headers=api.headers, json={
            "events": [], "periods": ["2026-01"], "participant_ids": ["r1"]})
    assert response.status_code == 200, response.text
    assert alive_when_sent == [True]
    assert len(books) == 1 and books[0]() is None
    assert threads["freed"] is not threads["sent"]


def _default_pool(tokens: int) -> None:
    anyio.to_thread.current_default_thread_limiter().total_tokens = tokens


def _held_what_ifs(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Semaphore, list[int]]:
    """What-ifs through the route held before they take the books, until the event is set; the
    semaphore is released, and the list grows, for each one that reaches `what_if`."""
    release, entered, computed = threading.Event(), threading.Semaphore(0), []
    held = whatif._held

    def waiting(*args: Any) -> Any:
        assert release.wait(30)
        return held(*args)

    def counted(*args: Any, **options: Any) -> dict[str, Any]:
        computed.append(1)
        entered.release()
        return what_if(*args, **options)

    monkeypatch.setattr(whatif, "_held", waiting)
    monkeypatch.setattr("api.routes.whatif.what_if", counted)
    return release, entered, computed


def test_what_ifs_waiting_for_their_turn_leave_the_thread_pool_to_reads(
    api: Api, make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What-ifs are computed one at a time, for seconds each at a million events (decision 138).
    Five asked at once wait for their turn in the event loop, not in the thread pool the sync
    routes share (decision 140): before, each waited in a thread of its own, and as many of them
    as the pool has threads (forty in the service, three here) left a statement read none."""
    _small_ledger(api)
    release, entered, computing = _held_what_ifs(monkeypatch)
    body = {"events": [], "periods": ["2026-01"], "participant_ids": ["r1"]}
    with TestClient(create_app(make_services())) as client:
        assert client.portal is not None
        client.portal.call(_default_pool, 3)
        codes: list[int] = []
        askers = [threading.Thread(target=lambda: codes.append(
            client.post("/v1/what-if", headers=api.headers, json=body).status_code)) for _ in range(5)]
        for asker in askers:
            asker.start()
        try:
            assert entered.acquire(timeout=30)
            assert not entered.acquire(timeout=0.5), "a second what-if took a thread while the first computed"
            read: list[int] = []
            reader = threading.Thread(target=lambda: read.append(
                client.get("/v1/statements/r1/2026-01", headers=api.headers).status_code))
            reader.start()
            reader.join(10)
            assert read == [200], "a statement read waited for the what-ifs"
        finally:
            release.set()
            for asker in askers:
                asker.join(30)
    assert codes == [200] * 5 and len(computing) == 5


def test_a_what_if_whose_client_left_while_it_waited_is_not_computed(
    api: Api, make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client that gave up waiting for its turn (and may be asking again, queued behind) costs the
    service nothing more (decision 140): the skipped what-if is logged as 499, and nobody receives
    it. The client leaves only once its what-if waits behind another: it was there when asked."""
    _small_ledger(api)
    release, _, computed = _held_what_ifs(monkeypatch)
    gone = threading.Event()
    body = json.dumps({"events": [], "periods": ["2026-01"], "participant_ids": ["r1"]}).encode()
    app = create_app(make_services())

    async def ask_and_leave() -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            if gone.is_set():
                return {"type": "http.disconnect"}
            await anyio.sleep_forever()  # still there: `is_disconnected` looks without waiting
            raise AssertionError("unreachable")

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(dict(message))

        headers = [(b"authorization", api.headers["Authorization"].encode()), (b"content-type", b"application/json")]
        await app({"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                   "scheme": "http", "path": "/v1/what-if", "raw_path": b"/v1/what-if", "query_string": b"",
                   "root_path": "", "headers": headers, "client": ("127.0.0.1", 1), "server": ("test", 80)},
                  receive, send)
        return sent

    def waiting_for_a_turn() -> int:
        return whatif_route._turn().statistics().tasks_waiting

    with TestClient(app) as client, caplog.at_level(logging.INFO, logger="ledger.http"):
        assert client.portal is not None
        first: list[int] = []
        asking = threading.Thread(target=lambda: first.append(
            client.post("/v1/what-if", headers=api.headers, content=body).status_code))
        asking.start()
        try:
            while not computed:  # the first what-if holds the turn
                time.sleep(0.01)
            leaving = client.portal.start_task_soon(ask_and_leave)
            while client.portal.call(waiting_for_a_turn) == 0:  # the second waits for it
                time.sleep(0.01)
            gone.set()
        finally:
            release.set()
            asking.join(30)
        sent = leaving.result(30)
        assert first == [200] and sent[0]["status"] == 499 and computed == [1]
        answered = client.post("/v1/what-if", headers=api.headers, content=body)
    assert answered.status_code == 200 and computed == [1, 1]
    logged = [vars(r)["status"] for r in caplog.records if vars(r).get("path") == "/v1/what-if"]
    assert sorted(logged) == [200, 200, 499]  # the skipped one is logged as it ends, before the first


@pytest.mark.parametrize("owner", ["r1", "r2"])
def test_what_if_can_resolve_an_open_dispute(api: Api, owner: str) -> None:
    """A hypothetical resolution of an open dispute, whoever's dispute it is (the fuzz test found a
    500 when a what-if folded events again): the copy resolves its own copy (decision 96), and
    the rows show no change."""
    _small_ledger(api)
    api.add("DisputeOpened", dispute_id="ds0", participant_id="r1", period="2026-01", reason="other")
    api.add("DisputeOpened", dispute_id="ds1", participant_id=owner, period="2026-01", reason="why")
    response = api.client.post("/v1/what-if", headers=api.headers, json={
        "events": [{"event_id": "wi-r", "type": "DisputeResolved",
                    "data": {"dispute_id": "ds1", "resolution": "rejected", "note": "fine as is"}}],
        "periods": ["2026-01"], "participant_ids": ["r1"]})
    assert response.status_code == 200, response.text
    assert [(row["total_now"], row["total_with"], row["lines"]) for row in response.json()["rows"]] == [
        ("125.00", "125.00", [])]


def test_what_if_validates_like_an_append(api: Api) -> None:
    _small_ledger(api)
    before = api.events()
    response = api.client.post("/v1/what-if", headers=api.headers, json={
        "events": [{"event_id": "x", "type": "DealCancelled",
                    "data": {"deal_id": "nope", "cancelled_on": "2026-01-20"}}],
        "periods": ["2026-01"], "participant_ids": ["r1"]})
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "data.deal_id"
    response = api.client.post("/v1/what-if", headers=api.headers, json={
        "events": [], "periods": ["2026-13"], "participant_ids": ["r1"]})
    assert response.status_code == 422
    assert api.events() == before


def test_what_if_takes_lists_of_any_length_up_to_its_rows_bound(api: Api) -> None:
    """The contract names no bound on a what-if's lists: an empty one answers no rows, and more
    than 1,000 entries (each list's old bound, undocumented) are answered; only a question of more
    than `MAX_ROWS` rows, one per participant and period, is 422, naming both figures. A participant
    or period named twice is answered once, where first named (one row per participant and period)."""
    from api.routes.whatif import MAX_ROWS

    _small_ledger(api)
    others = [f"x{n:04d}" for n in range(1198)]
    registered = api.client.post("/v1/events/batch", headers=api.headers, json={"events": [
        {"event_id": f"reg-{p}", "type": "ParticipantRegistered",
         "data": {"participant_id": p, "name": p, "team_id": "t1", "start_date": "2020-01-01"}} for p in others]})
    assert registered.status_code == 201, registered.text
    head = api.head()

    def ask(periods: list[str], participant_ids: list[str]) -> Any:
        return api.client.post("/v1/what-if", headers=api.headers,
                               json={"events": [], "periods": periods, "participant_ids": participant_ids})

    for periods, people in ((["2026-01"], []), ([], ["r1"]), ([], [])):
        response = ask(periods, people)
        assert (response.status_code, response.json()) == (200, {"as_of_position": head, "rows": []})
    many = ask(["2026-01"], ["r2", "r1", *others])
    assert many.status_code == 200, many.text
    rows = many.json()["rows"]
    assert [r["participant_id"] for r in rows] == ["r2", "r1", *others]
    assert [r["total_now"] for r in rows[:3]] == ["75.00", "125.00", "0.00"]
    twice = ask(["2026-01", "2026-02", "2026-01"], ["r2", "r1", "r2"] * (MAX_ROWS // 3))
    assert twice.status_code == 200, twice.text
    assert [(r["participant_id"], r["period"], r["total_now"]) for r in twice.json()["rows"]] == [
        ("r2", "2026-01", "75.00"), ("r2", "2026-02", "0.00"), ("r1", "2026-01", "125.00"), ("r1", "2026-02", "0.00")]
    too_many = ask(["2026-01", "2026-02"], [f"y{n}" for n in range(MAX_ROWS // 2 + 1)])
    assert too_many.status_code == 422
    [problem] = too_many.json()["problems"]
    assert problem["field"] == "participant_ids" and f"{MAX_ROWS + 2:,}" in problem["problem"]


def test_payout_export_lists_frozen_totals_with_a_checksum(api: Api, database_url: str) -> None:
    _small_ledger(api)
    assert api.get("/v1/payouts/2026-01").status_code == 409
    api.close("2026-01")
    api.deal("late", "2026-01-30", "1000", "r1")  # changes recomputed, never the payout
    payload = api.get("/v1/payouts/2026-01").json()
    assert [(row["participant_id"], row["total"]) for row in payload["rows"]] == [("r1", "125.00"), ("r2", "75.00")]
    assert payload["sum"] == "200.00"
    for refusing in ("text/csv;q=0", "application/json, text/csv;q=0.5"):  # JSON preferred (decision 146)
        answer = api.client.get("/v1/payouts/2026-01", headers={**api.headers, "Accept": refusing})
        assert answer.headers["content-type"].startswith("application/json") and answer.json() == payload
        assert answer.headers["vary"] == "Accept"
    two_lines = [*api.headers.items(), ("Accept", "text/csv;q=0.5"), ("Accept", "application/json")]
    assert api.client.get("/v1/payouts/2026-01", headers=two_lines).json() == payload  # one list, JSON preferred
    preferring = api.client.get("/v1/payouts/2026-01", headers={**api.headers, "Accept": "text/csv, */*;q=0.8"})
    response = api.client.get("/v1/payouts/2026-01", headers={**api.headers, "Accept": "text/csv"})
    assert response.headers["content-type"].startswith("text/csv") and response.headers["vary"] == "Accept"
    assert preferring.text == response.text
    text = response.text
    body, checksum_line = text.rsplit("# ", 1)
    assert checksum_line.strip() == f"rows=2 sum=200.00 sha256={hashlib.sha256(body.encode()).hexdigest()}"
    assert payload["checksum"] == hashlib.sha256(body.encode()).hexdigest()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows == [["participant_id", "team_id", "period", "currency", "total"],
                    ["r1", "t1", "2026-01", "USD", "125.00"], ["r2", "t1", "2026-01", "USD", "75.00"]]
    result = CliRunner().invoke(cli_app, ["export", "payouts", "--period", "2026-01"],
                                env={"LEDGER_DATABASE_URL": database_url})
    assert result.exit_code == 0
    assert result.output == text


def test_replay_audit_finds_no_difference_on_a_healthy_ledger(api: Api, database_url: str) -> None:
    _small_ledger(api)
    api.close("2026-01")
    api.deal("late", "2026-01-30", "1000", "r1")
    api.close("2026-02")
    response = api.client.post("/v1/audit/replay", headers=api.headers)
    assert response.json()["ok"] is True
    assert response.json()["statements_checked"] == 4
    result = CliRunner().invoke(cli_app, ["replay"], env={"LEDGER_DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    assert "differences: 0" in result.output


def test_the_replay_audit_names_a_statement_the_stored_log_no_longer_gives(api: Api, database_url: str) -> None:
    """An amount changed in the store behind the running service: its frozen statement still shows
    what was closed, and the audit, folding the stored log afresh, names the one it changes, with
    both figures; the other statements, of both closes, agree."""
    _small_ledger(api)
    api.close("2026-01")
    api.close("2026-02")
    deal = next(e for e in api.events() if e["event_id"] and e["data"].get("deal_id") == "a")
    _tamper(database_url, deal["position"])  # deal a: 1,000.00 -> 9,999,999.00, credited to r1 alone
    body = api.client.post("/v1/audit/replay", headers=api.headers).json()
    assert (body["ok"], body["statements_checked"]) == (False, 4)
    [difference] = body["differences"]
    assert (difference["participant_id"], difference["period"]) == ("r1", "2026-01")
    # 5 % of r1's credit: 1,000.00 + half of 3,000.00 frozen; 9,999,999.00 + 1,500.00 in the store.
    assert (difference["frozen"]["total"], difference["recomputed"]["total"]) == ("125.00", "500074.95")


def test_the_replay_audit_names_a_statement_whose_stored_event_was_deleted(api: Api, database_url: str) -> None:
    """A row deleted from the store behind the running service is a difference, not a failure of
    the audit itself: r1's frozen January still counts deal a, the stored log no longer does."""
    _small_ledger(api)
    api.close("2026-01")
    deal = next(e for e in api.events() if e["event_id"] and e["data"].get("deal_id") == "a")
    _delete(database_url, deal["position"])
    response = api.client.post("/v1/audit/replay", headers=api.headers)
    assert response.status_code == 200, response.text
    [difference] = response.json()["differences"]
    assert (difference["participant_id"], difference["period"]) == ("r1", "2026-01")
    assert (difference["frozen"]["total"], difference["recomputed"]["total"]) == ("125.00", "75.00")


def test_the_replay_audit_folds_its_books_with_the_services_memo_lines(
    make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The book the audit folds keeps to `LEDGER_MEMO_LINES` too (decision 84), and a small memo
    finds what a roomy one does. One book for every close (decision 115), whose memo is smaller than
    the service's default (decision 116)."""
    import replay.audit

    made = watch_books(monkeypatch, replay.audit)
    default = make_services()
    replay.audit.replay_closes(default.store, default.books)
    assert made == [replay.audit.AUDIT_MEMO_LINES] and default.settings.memo_lines > made[0]
    made.clear()
    services = make_services(memo_lines=5)
    with TestClient(create_app(services)) as client:
        api = Api(client, services)
        _small_ledger(api)
        api.close("2026-01")
        api.deal("late", "2026-01-30", "1000", "r1")
        api.close("2026-02")
        body = api.client.post("/v1/audit/replay", headers=api.headers).json()
    assert (body["ok"], body["statements_checked"]) == (True, 4)
    assert made == [5]


def test_reads_answer_while_a_replay_audit_folds_the_stored_log(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit folds a book of its own from the stored log, a minute and more at a million
    events, with the service's books free: a read meanwhile answers at once, and events appended
    meanwhile are folded, not held up. The audit answers as of the position it began at
    (decision 116)."""
    import replay.audit
    from ledger.decode import decode_trusted

    _small_ledger(api)
    begun_at = api.close("2026-01")
    folding, finish = threading.Event(), threading.Event()

    def decode(type_: str, data: dict[str, Any]) -> Any:
        folding.set()
        assert finish.wait(10)
        return decode_trusted(type_, data)

    monkeypatch.setattr(replay.audit, "decode_trusted", decode)
    answers: dict[str, Any] = {}
    audit = threading.Thread(
        target=lambda: answers.update(audit=api.client.post("/v1/audit/replay", headers=api.headers).json()))
    audit.start()
    try:
        assert folding.wait(10)
        again = api.client.post("/v1/audit/replay", headers=api.headers)  # one audit at a time
        assert (again.status_code, again.json()["error"]) == (429, "audit_running"), again.text
        late = api.deal("late", "2026-01-30", "1000", "r1")  # while the audit folds; adjusts February
        api.close("2026-02")
        reader = threading.Thread(target=lambda: answers.update(
            january=api.total("r1", "2026-01"), february=api.total("r1", "2026-02", min_position=late)))
        reader.start()
        reader.join(10)
        assert answers == {"january": "125.00", "february": "50.00"}  # answered while the audit still folds
    finally:
        finish.set()
        audit.join(10)
    body = answers["audit"]
    assert (body["ok"], body["as_of_position"], body["statements_checked"]) == (True, begun_at, 2)


def test_the_replay_audit_checks_a_close_another_process_stored(api: Api, make_services: Any) -> None:
    """The audit is as of the stored head, as every read is: a close stored by another process,
    which this one's books had not folded yet, is checked too."""
    _small_ledger(api)
    api.close("2026-01")
    other = Api(TestClient(create_app(make_services())), api.services)  # a second service process
    other.statement("r1", "2026-01")  # it has read the log so far
    position = api.close("2026-02")
    body = other.client.post("/v1/audit/replay", headers=other.headers).json()
    assert (body["ok"], body["as_of_position"], body["statements_checked"]) == (True, position, 4)


def test_disputes_are_listed_on_statements_and_by_query(api: Api) -> None:
    _small_ledger(api)
    api.add("DisputeOpened", dispute_id="d1", participant_id="r1", period="2026-01", deal_id="b",
            reason="Split should be 70/30")
    statement = api.statement("r1", "2026-01")
    assert statement["disputes"] == [{"dispute_id": "d1", "participant_id": "r1", "period": "2026-01",
                                      "status": "open", "reason": "Split should be 70/30", "deal_id": "b"}]
    listed = api.get("/v1/disputes", status="open", period="2026-01").json()["disputes"]
    assert listed == statement["disputes"]
    assert [d["dispute_id"] for d in api.get("/v1/disputes", status="open", period="2026-01").json()["disputes"]] == [
        "d1"]
    api.add("DisputeResolved", dispute_id="d1", resolution="upheld", note="Agreed; adjusting")
    api.add("AdjustmentRecorded", adjustment_id="fix-d1", participant_id="r1", period="2026-02", amount="15.00",
            reason="Dispute d1 upheld")
    assert api.get("/v1/disputes", status="open").json()["disputes"] == []
    assert api.statement("r1", "2026-01")["disputes"][0]["status"] == "upheld"
    assert api.total("r1", "2026-02") == "15.00"
    assert api.post("DisputeResolved", dispute_id="d1", resolution="rejected", note="again").status_code == 422


@pytest.mark.parametrize(
    "path",
    ["/v1/statements/r1/2026-01", "/v1/statements/r1/2026-01/lines/1", "/v1/attainment", "/v1/rankings"],
)
def test_a_read_waiting_for_the_log_does_not_hold_up_other_reads(api: Api, path: str) -> None:
    """A read asking for a position beyond this process's head waits for the log, which a commit
    may hold for seconds while the database is away; it waits before taking the books, so reads
    that need nothing new answer meanwhile."""
    _small_ledger(api)
    log = api.services.log
    head = log.head
    waiting = threading.Event()
    real_catch_up = log.catch_up

    def catch_up(wait: bool = True, limit: int | None = None, read_ahead: bool = False) -> int:
        if wait:
            waiting.set()
        return real_catch_up(wait, limit, read_ahead)

    log.catch_up = catch_up  # type: ignore[method-assign]
    answers: dict[str, int] = {}
    params = {} if path.startswith("/v1/statements") else {"period": "2026-01"}
    with log._lock:  # a commit under way
        waiter = threading.Thread(
            target=lambda: answers.update(waiter=api.get(path, min_position=head + 1, **params).status_code))
        waiter.start()
        assert waiting.wait(10)
        other = threading.Thread(target=lambda: answers.update(other=api.get(path, **params).status_code))
        other.start()
        other.join(10)
        assert answers == {"other": 200}  # answered while the first read still waits for the log
    waiter.join(10)
    assert answers == {"other": 200, "waiter": 422}  # nothing was stored meanwhile: beyond the head


def test_as_of_time_and_parameter_rules(api: Api) -> None:
    _small_ledger(api)
    events = api.events()
    third = events[2]
    moment = datetime.strptime(third["recorded_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    response = api.get("/v1/attainment", period="2026-01", as_of=moment.isoformat())
    assert response.json()["as_of_position"] >= 3
    early = (moment - timedelta(days=1)).isoformat()
    assert api.get("/v1/attainment", period="2026-01", as_of=early).json()["as_of_position"] == 0
    assert api.get("/v1/attainment", period="2026-01", as_of="2026-01-01T00:00:00").status_code == 422
    assert api.get("/v1/attainment", period="2026-01", as_of_position=1, as_of=early).status_code == 422
    assert api.get("/v1/attainment", period="2026-01", as_of_position=len(events) + 1).status_code == 422
    assert api.get("/v1/attainment", period="2026-13").status_code == 422
    assert api.get("/v1/statements/nobody/2026-01").status_code == 404
    assert api.get("/v1/statements/r1/2026-1").status_code == 422
    r1_then = api.statement("r1", "2026-01", as_of_position=6)
    assert (r1_then["as_of_position"], r1_then["total"]) == (6, "50.00")
    page = api.get("/v1/events", after=2, limit=2, as_of_position=3).json()
    assert [e["position"] for e in page["events"]] == [3]
    # times beyond what UTC can hold: before the first event and after the last
    first_moment = api.get("/v1/attainment", period="2026-01", as_of="0001-01-01T00:00:00+14:00")
    assert first_moment.json()["as_of_position"] == 0
    for early_year in ("0500-01-01T00:00:00Z", "0999-06-01T12:00:00+02:00"):  # compared as text, padded
        assert api.get("/v1/attainment", period="2026-01", as_of=early_year).json()["as_of_position"] == 0
    last_moment = api.get("/v1/attainment", period="2026-01", as_of="9999-12-31T23:59:59-14:00")
    assert last_moment.json()["as_of_position"] == len(events)
    beyond = api.get("/v1/attainment", period="2026-01", as_of="0001-01-01T00:00:00+14:00", min_position=99)
    assert (beyond.status_code, beyond.json()["problems"][0]["field"]) == (422, "min_position")
    # a leap second, which RFC 3339 allows: the last instant of its minute (was 422)
    for leap, position in (("2016-12-31T23:59:60Z", 0), ("9998-12-31T23:59:60.5+01:00", len(events))):
        answer = api.get("/v1/attainment", period="2026-01", as_of=leap)
        assert (answer.status_code, answer.json().get("as_of_position")) == (200, position), answer.text
    assert api.get("/v1/attainment", period="2026-01", as_of="2026-01-01T00:00:61Z").status_code == 422


def test_read_your_writes_across_processes(api: Api, make_services: Any) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    _small_ledger(api)
    other = Api(TestClient(create_app(make_services())), api.services)  # a second service process
    position = api.deal("ryw", "2026-01-20", "2000", "r2")
    statement = other.statement("r2", "2026-01", min_position=position)
    assert statement["as_of_position"] >= position
    assert any(line.get("deal_id") == "ryw" for line in statement["lines"])
    response = other.get("/v1/statements/r2/2026-01", min_position=position + 5)
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "min_position"


@pytest.mark.parametrize("ask", ["as_of_position", "as_of"])
def test_a_read_as_of_what_another_process_stored_waits_while_an_append_holds_the_log(
    api: Api, make_services: Any, ask: str
) -> None:
    """A read as of a position beyond this process's head, or a time no earlier than its newest
    event's, reads the store first, even while one of its own appends is reading it: it answered
    422 (a position), or too early a position (a time), from the stale head."""
    _small_ledger(api)
    services = make_services()  # a second service process
    other = Api(TestClient(create_app(services)), api.services)
    other.statement("r2", "2026-01")  # it has read the log so far
    position = api.deal("elsewhere", "2026-01-20", "2000", "r2")
    recorded_at = api.get("/v1/events", after=position - 1, limit=1).json()["events"][0]["recorded_at"]
    held, done = threading.Event(), threading.Event()

    def append_reading_the_store() -> None:
        with services.log._lock:  # as the committer holds it while it catches up and commits
            held.set()
            done.wait(0.3)

    holder = threading.Thread(target=append_reading_the_store)
    holder.start()
    held.wait()
    try:
        params = {"as_of_position": position} if ask == "as_of_position" else {"as_of": recorded_at}
        statement = other.statement("r2", "2026-01", **params)
    finally:
        done.set()
        holder.join()
    assert statement["as_of_position"] == position
    assert any(line.get("deal_id") == "elsewhere" for line in statement["lines"])


def test_rebuild_folds_the_whole_stored_log(api: Api, database_url: str) -> None:
    _small_ledger(api)
    result = CliRunner().invoke(cli_app, ["rebuild"], env={"LEDGER_DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    assert f"{len(api.events())} events in" in result.output
