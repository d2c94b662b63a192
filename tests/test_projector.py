"""The materialized statement view and `ledger project` (issue 5: incremental projections, scale-out).

On both backends: the view's rows are exactly the non-empty statements the API
shows, after a catch-up in small batches and after every later append; a
worker that is not where the view is cannot write; one leader at a time; and
a real leader process SIGKILLed under load is replaced by its standby with
no event skipped or applied twice.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.settings import MEMO_LINES, parse_database_url
from ledger.view_rows import ViewRow
from ledger.views import ROWS_TABLE, StatementView, ViewMoved, open_view
from projections.book import Book
from replay.bootstrap import Services
from replay.demo import load_demo
from replay.projector import Projector, projector_for
from tests.processes import ADMIN, AUTH, REPO, Server
from tests.support import Api, eager_forks, memo_held, rules

MONTHS = [f"2026-{m:02d}" for m in range(1, 13)]
PERIODS = MONTHS + [f"2026-Q{q}" for q in range(1, 5)]


def _projector(
    services: Services, worker: str = "test", batch: int = 10_000, memo_lines: int = MEMO_LINES, workers: int = 1
) -> Projector:
    database = parse_database_url(services.settings.database_url)
    projector = projector_for(services.store, database, batch, memo_lines, workers)
    projector.worker = worker
    return projector


def _expected(api: Api, participants: list[str]) -> list[ViewRow]:
    """The non-empty statements, as the API shows them (an independent reading of the view's rows)."""
    rows = []
    for participant_id in sorted(participants):
        for period in sorted(PERIODS):
            response = api.client.get(f"/v1/statements/{participant_id}/{period}", headers=api.headers)
            assert response.status_code == 200, response.text
            body = response.json()
            if body["target"] is None and body["credited"] == "0.00" and not body["lines"]:
                continue
            rows.append(
                ViewRow(
                    participant_id,
                    period,
                    body["status"],
                    None if body["target"] is None else Decimal(body["target"]),
                    Decimal(body["credited"]),
                    None if body["attainment"] is None else Decimal(body["attainment"]),
                    Decimal(body["total"]),
                    len(body["lines"]),
                )
            )
    return rows


def _participants(api: Api) -> list[str]:
    return sorted(api.services.books.head.state.participants)


def test_catch_up_in_small_batches_gives_the_statements_of_the_api(api: Api) -> None:
    load_demo(api.services.log)
    projector = _projector(api.services, batch=40)
    assert projector.election.try_lead()
    assert projector.activate() == 0
    assert projector.catch_up() == api.services.log.head
    view = projector.view
    assert view.position() == api.services.log.head
    expected = _expected(api, _participants(api))
    assert view.rows() == expected
    assert any(row.status == "closed" for row in expected) and any(row.status == "open" for row in expected)
    batches = view.batches()
    assert [b.first_position for b in batches] == list(range(1, api.services.log.head + 1, 40))
    assert batches[-1].last_position == api.services.log.head
    projector.election.resign()


def test_later_events_update_insert_and_delete_rows(api: Api) -> None:
    api.add("PlanPublished", plan_id="p", effective_from="2026-01-01", rules=rules([("0", "0.1")]))
    for person in ("a", "b"):
        api.add("ParticipantRegistered", participant_id=person, name=person, start_date="2026-01-01", team_id="t")
        api.add("PlanAssigned", participant_id=person, plan_id="p", effective_from="2026-01-01")
    api.add("TargetSet", participant_id="a", period="2026-02", amount="1000.00")
    deal = {"booked_on": "2026-02-10", "amount": "500.00", "currency": "USD"}
    api.add("DealBooked", deal_id="d1", credits=[{"participant_id": "a", "share": "1"}], **deal)
    api.add("DealBooked", deal_id="d2", credits=[{"participant_id": "b", "share": "1"}], **deal)
    projector = _projector(api.services)
    assert projector.election.try_lead()
    projector.activate()
    projector.catch_up()
    assert projector.view.rows() == _expected(api, ["a", "b"])
    # monthly plans: the quarters' statements are empty and have no row
    assert {(r.participant_id, r.period) for r in projector.view.rows()} == {("a", "2026-02"), ("b", "2026-02")}

    api.add("DealAmended", deal_id="d1", amount="800.00", amended_on="2026-02-15")
    api.add("DealBooked", deal_id="d3", credits=[{"participant_id": "b", "share": "1"}],
            **{**deal, "booked_on": "2026-04-02"})
    api.add("DealCancelled", deal_id="d2", cancelled_on="2026-02-20")  # b's February is empty again
    assert projector.catch_up() == api.services.log.head
    rows = projector.view.rows()
    assert rows == _expected(api, ["a", "b"])
    assert ("b", "2026-02") not in {(r.participant_id, r.period) for r in rows}
    by_key = {(r.participant_id, r.period): r for r in rows}
    assert by_key[("a", "2026-02")].total == Decimal("80.00")
    assert by_key[("a", "2026-02")].attainment == Decimal("0.8000")
    assert by_key[("b", "2026-04")].total == Decimal("50.00")

    api.add("PeriodClosed", period="2026-02")
    api.add("DealAmended", deal_id="d1", amount="900.00", amended_on="2026-03-05")  # lands as an adjustment in March
    projector.catch_up()
    rows = projector.view.rows()
    assert rows == _expected(api, ["a", "b"])
    by_key = {(r.participant_id, r.period): r for r in rows}
    assert by_key[("a", "2026-02")].status == "closed"
    assert by_key[("a", "2026-03")].total == Decimal("10.00")
    projector.election.resign()


def _as_of_positions(view: StatementView) -> dict[tuple[str, str], int]:
    """Each row's `as_of_position`, read straight from the table (the view's API does not show it)."""
    datastore: Any = view.datastore  # type: ignore[attr-defined]  # both recorders have one
    schema = getattr(datastore, "schema", None)  # PostgreSQL: the test's own
    table = f'"{schema}".{ROWS_TABLE}' if schema else ROWS_TABLE
    with datastore.transaction(commit=False) as curs:  # rows by column name on both (dict rows, sqlite3.Row)
        curs.execute(f"SELECT participant_id, period, as_of_position FROM {table}")
        return {(row["participant_id"], row["period"]): row["as_of_position"] for row in curs.fetchall()}


def test_a_close_turns_rows_closed_and_rewrites_only_those_changed_before_it(api: Api) -> None:
    """A batch of a deal for `a` and February's close: `a`'s February row is rewritten with the
    deal, closed; `b`'s keeps its figures and turns closed, in SQL, without its statement being
    recomputed (decision 130). Both rows say the batch's last position, and equal the API's."""
    api.add("PlanPublished", plan_id="p", effective_from="2026-01-01", rules=rules([("0", "0.1")]))
    for person in ("a", "b"):
        api.add("ParticipantRegistered", participant_id=person, name=person, start_date="2026-01-01", team_id="t")
        api.add("PlanAssigned", participant_id=person, plan_id="p", effective_from="2026-01-01")
        api.add("DealBooked", deal_id=f"{person}1", credits=[{"participant_id": person, "share": "1"}],
                booked_on="2026-02-10", amount="500.00", currency="USD")
    projector = _projector(api.services)
    assert projector.election.try_lead()
    projector.activate()
    before = projector.catch_up()
    api.add("DealBooked", deal_id="a2", credits=[{"participant_id": "a", "share": "1"}],
            booked_on="2026-02-20", amount="300.00", currency="USD")
    api.add("PeriodClosed", period="2026-02")
    head = projector.catch_up()
    assert head == before + 2
    rows = {(r.participant_id, r.period): r for r in projector.view.rows()}
    assert list(rows.values()) == _expected(api, ["a", "b"])
    assert (rows[("a", "2026-02")].status, rows[("a", "2026-02")].total) == ("closed", Decimal("80.00"))
    assert (rows[("b", "2026-02")].status, rows[("b", "2026-02")].total) == ("closed", Decimal("50.00"))
    assert _as_of_positions(projector.view) == {("a", "2026-02"): head, ("b", "2026-02"): head}
    projector.election.resign()


def test_a_view_write_on_sqlite_waits_for_an_append_made_while_it_reads(
    api: Api, make_services: Callable[..., Services], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: an append committed between the view's read of its tracked position and its first
    write made the write fail at once (a stale snapshot, which waits for nothing), and the worker
    refolded the log to try again. The write takes the writer's lock first: the append waits for
    it instead, and both are stored (decision 117)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's view write locks its tables first")
    import ledger.views

    api.add("PlanPublished", plan_id="p", effective_from="2026-01-01", rules=rules([("0", "0.1")]))
    api.add("ParticipantRegistered", participant_id="a", name="a", start_date="2026-01-01", team_id="t")
    api.add("PlanAssigned", participant_id="a", plan_id="p", effective_from="2026-01-01")
    deal = {"booked_on": "2026-02-10", "amount": "500.00", "currency": "USD"}
    api.add("DealBooked", deal_id="d1", credits=[{"participant_id": "a", "share": "1"}], **deal)
    projector = _projector(api.services)
    assert projector.election.try_lead()
    projector.activate()
    real_params = ledger.views._params
    service = make_services()  # `ledger serve`, a process apart from the worker's: its own connections
    appends: list[threading.Thread] = []

    def params(row: ViewRow, position: int, text: bool) -> tuple[Any, ...]:
        if not appends:  # once, between the view's read and its first write of rows
            appends.append(threading.Thread(target=lambda: service.log.append([{
                "event_id": "d2", "type": "DealBooked",
                "data": {"deal_id": "d2", "credits": [{"participant_id": "a", "share": "1"}], **deal}}])))
            appends[0].start()
            appends[0].join(1)  # committed by now, unless the view's write holds the writer's lock
        return real_params(row, position, text)

    monkeypatch.setattr(ledger.views, "_params", params)
    first = projector.catch_up()
    appends[0].join(10)
    assert service.log.head == first + 1  # the append was stored too, once the view's write ended
    assert projector.catch_up() == first + 1
    assert projector.view.rows() == _expected(api, ["a"])
    assert projector.view.rows()[0].total == Decimal("100.00")  # 10 % of d1 and d2
    projector.election.resign()


def test_a_worker_behind_the_view_cannot_write(api: Api) -> None:
    load_demo(api.services.log)
    first, second = _projector(api.services, "first", 100), _projector(api.services, "second", 100)
    first.activate()
    second.activate()
    first.step()
    rows, batches = first.view.rows(), first.view.batches()
    with pytest.raises(ViewMoved):
        second.step()  # it would apply positions 1-100 a second time
    assert (second.view.rows(), second.view.batches()) == (rows, batches)
    assert second.activate() == 100  # starting over from the tracked position, it goes on
    assert second.step() == 100
    assert [(b.first_position, b.worker) for b in second.view.batches()] == [(1, "first"), (101, "second")]


def _wins(election: Any) -> bool:
    """Whether the election is won within a few seconds: a session closed by its leader ends on
    the server a moment later, and a standby trying on a session it kept may ask first."""
    deadline = time.monotonic() + 5
    while not election.try_lead():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_one_leader_at_a_time(make_services: Callable[..., Services]) -> None:
    services = make_services()
    one, two = _projector(services).election, _projector(services).election
    assert one.try_lead() and one.leading()
    assert not two.try_lead()
    one.resign()
    assert not one.leading()
    assert _wins(two)
    assert not one.try_lead()
    two.resign()
    one.resign()


def test_a_standby_tries_again_on_its_own_session(
    make_services: Callable[..., Services], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A standby keeps one session to try for the lock on, every `--poll` seconds: a new one each
    time cost the server a process start five times a second per standby. A session that fails is
    replaced at the next try (decision 117)."""
    if not database_url.startswith("postgres"):
        pytest.skip("the election's session is PostgreSQL's")
    import psycopg

    services = make_services()
    leader, standby = _projector(services).election, _projector(services).election
    sessions: list[Any] = []
    real_connect = psycopg.connect

    def connect(*args: Any, **kwargs: Any) -> Any:
        sessions.append(real_connect(*args, **kwargs))
        return sessions[-1]

    monkeypatch.setattr(psycopg, "connect", connect)
    assert leader.try_lead()
    assert [standby.try_lead() for _ in range(5)] == [False] * 5
    assert len(sessions) == 2  # the leader's and the standby's
    with psycopg.connect(services.settings.database_url.split("?")[0], autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (sessions[1].info.backend_pid,))
    assert not standby.try_lead()  # its session ended: it says so, and starts another next time
    leader.resign()
    assert _wins(standby) and standby.leading()
    assert len(sessions) == 4  # the admin's, and the standby's second
    standby.resign()


def test_the_server_watches_the_leaders_session_too(make_services: Callable[..., Services], database_url: str) -> None:
    """The leader's lock lasts as long as its session on the server: if the leader's host dies or is
    cut off, only the server's own keepalives end that session, and its defaults are the system's
    (about two hours), so the election's session sets them for itself (decision 117)."""
    if not database_url.startswith("postgres"):
        pytest.skip("the election's session is PostgreSQL's")
    election = _projector(make_services()).election
    assert election.try_lead()
    try:
        shown = {
            name: election._conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[attr-defined]
            for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count", "tcp_user_timeout")
        }
    finally:
        election.resign()
    assert shown == {"tcp_keepalives_idle": "5", "tcp_keepalives_interval": "2", "tcp_keepalives_count": "3",
                     "tcp_user_timeout": "10000"}


def test_a_worker_that_cannot_stand_for_election_says_why_once(
    make_services: Callable[..., Services], database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker whose election cannot reach the server waits as a standby, as before, but says why,
    once for as long as the cause lasts, and again when it reaches the server: every worker
    waiting silently left the view standing still with nothing said (decision 117)."""
    if not database_url.startswith("postgres"):
        pytest.skip("the election's session is PostgreSQL's")
    election = _projector(make_services()).election
    reachable = dict(election._kwargs)  # type: ignore[attr-defined]
    election._kwargs = {**reachable, "dbname": "no_such_ledger_database"}  # type: ignore[attr-defined]
    with caplog.at_level("WARNING", logger="ledger.election"):
        assert not election.try_lead()
        assert not election.try_lead()
        election._kwargs = reachable  # type: ignore[attr-defined]
        assert election.try_lead()
    election.resign()
    messages = [record.getMessage() for record in caplog.records if record.name == "ledger.election"]
    assert len(messages) == 2, messages
    assert "cannot stand for election" in messages[0] and "no_such_ledger_database" in messages[0]
    assert messages[1] == "the election reaches the database again"


# --- the scale-out path with real processes -------------------------------------------------


class Worker:
    """`python -m cli project` with its JSON log in a file."""

    def __init__(self, database_url: str, log: Path) -> None:
        self.log = log
        env = {**os.environ, "LEDGER_DATABASE_URL": database_url, "LEDGER_ADMIN_TOKEN": ADMIN,
               "PYTHONUNBUFFERED": "1"}
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli", "project", "--batch", "25", "--poll", "0.05"],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            )

    def says(self, message: str) -> bool:
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                if json.loads(line).get("message") == message:
                    return True
        return False

    def wait_for(self, message: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.says(message):
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"no '{message}' in:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[[str], Worker]]:
    made: list[Worker] = []

    def make(database_url: str) -> Worker:
        made.append(Worker(database_url, tmp_path / f"worker-{len(made)}.log"))
        return made[-1]

    yield make
    for worker in made:
        worker.stop()


@pytest.mark.slow
def test_standby_takes_over_from_a_killed_leader_under_load(
    database_url: str, api: Api, workers: Callable[[str], Worker], tmp_path: Path
) -> None:
    """Two service processes take appends, one worker leads, one stands by; the leader is SIGKILLed."""
    load_demo(api.services.log)
    servers = [Server(database_url, tmp_path / f"serve-{n}") for n in range(2)]
    try:
        for server in servers:
            server.start()
        leader = workers(database_url)
        leader.wait_for("leading")
        standby = workers(database_url)
        standby.wait_for("standby")

        stop = threading.Event()
        accepted: list[int] = []

        def load(n: int) -> None:
            with httpx.Client(base_url=servers[n % 2].base, headers=AUTH, timeout=30) as client:
                i = 0
                while not stop.is_set():
                    i += 1
                    body: dict[str, Any] = {
                        "event_id": f"load-{n}-{i}", "type": "DealBooked",
                        "data": {"deal_id": f"load-{n}-{i}", "booked_on": "2026-09-15", "amount": "100.00",
                                 "currency": "USD", "credits": [{"participant_id": "rep-alba", "share": "1"}]},
                    }
                    response = client.post("/v1/events", json=body)
                    assert response.status_code == 201, response.text
                    accepted.append(response.json()["position"])

        loaders = [threading.Thread(target=load, args=(n,)) for n in range(4)]
        for thread in loaders:
            thread.start()
        time.sleep(1.0)
        leader.process.send_signal(signal.SIGKILL)
        leader.process.wait(30)
        standby.wait_for("leading")
        time.sleep(1.0)
        stop.set()
        for thread in loaders:
            thread.join(60)
    finally:
        for server in servers:
            server.kill()
    assert len(accepted) > 50

    api.services.log.catch_up()
    head = api.services.log.head
    view: StatementView = open_view(api.services.store)
    deadline = time.monotonic() + 60
    while view.position() < head:
        assert time.monotonic() < deadline, f"the standby stopped at {view.position()} of {head}"
        time.sleep(0.1)
    standby.stop()

    batches = view.batches()
    assert batches[0].first_position == 1 and batches[-1].last_position == head
    for before, after in itertools.pairwise(batches):
        assert after.first_position == before.last_position + 1, (before, after)
    workers_in_order = [b.worker for b in batches]
    switch = next(i for i, w in enumerate(workers_in_order) if w != workers_in_order[0])
    assert switch > 0 and set(workers_in_order[switch:]) == {workers_in_order[switch]}
    assert view.rows() == _expected(api, _participants(api))


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url, "LEDGER_ADMIN_TOKEN": ADMIN}
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)


def test_rebuild_of_the_view_resumes_from_its_tracked_position(database_url: str, api: Api) -> None:
    load_demo(api.services.log)
    head = api.services.log.head
    interrupted = _projector(api.services, "interrupted", batch=100)
    assert interrupted.election.try_lead()
    interrupted.activate()
    assert interrupted.step() == 100  # then the process "stops"
    held = _cli(database_url, "rebuild", "--view")
    assert held.returncode == 3 and "leads the projection" in held.stderr  # never two writers
    interrupted.election.resign()

    resumed = _cli(database_url, "rebuild", "--view", "--batch", "100")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{head - 100} events in" in resumed.stdout and "events/s" in resumed.stdout
    view = open_view(api.services.store)
    assert [(b.first_position, b.last_position) for b in view.batches()] == [
        (1, 100), *((first, min(first + 99, head)) for first in range(101, head + 1, 100))
    ]
    expected = _expected(api, _participants(api))
    assert view.rows() == expected

    again = _cli(database_url, "rebuild", "--view", "--restart")
    assert again.returncode == 0, again.stderr
    assert [(b.first_position, b.last_position) for b in view.batches()] == [(1, head)]
    assert view.rows() == expected


@pytest.mark.parametrize("after_first_batch", ["its session drops", "a rival writes"])
def test_a_view_rebuild_that_loses_the_lead_stops_and_says_where(
    database_url: str, api: Api, monkeypatch: pytest.MonkeyPatch, after_first_batch: str
) -> None:
    """`ledger rebuild --view` checks its leadership before each batch, as `ledger project` does: if
    the election's session dropped (a standby may lead now), it stops with exit code 3 and says
    where and why, where it went on writing until a rival's write made it fail with a traceback.
    A rival's write stops it too, at the last position it wrote, not the batch it could not."""
    from typer.testing import CliRunner

    from cli import app as cli_app

    load_demo(api.services.log)
    real_step = Projector.step
    steps: list[int] = []

    def step(projector: Projector) -> int:
        if steps and after_first_batch == "a rival writes":
            rival = _projector(api.services, "rival", batch=50)
            rival.activate()
            real_step(rival)  # 101-150, while the rebuild still leads
        steps.append(real_step(projector))
        if after_first_batch == "its session drops":
            projector.election.resign()
        return steps[-1]

    monkeypatch.setattr(Projector, "step", step)
    result = CliRunner().invoke(cli_app, ["rebuild", "--view", "--batch", "100"],
                                env={"LEDGER_DATABASE_URL": database_url})
    assert result.exit_code == 3, result.output
    why = ("this rebuild lost the projection's leadership" if after_first_batch == "its session drops"
           else "the view is at position 150, not 100")
    assert f"stopped at position 100: {why}" in result.output
    batches = [(b.first_position, b.last_position, b.worker) for b in open_view(api.services.store).batches()]
    rivals = [(101, 150, "rival")] if after_first_batch == "a rival writes" else []
    assert (batches[0][:2], batches[1:]) == ((1, 100), rivals)


def test_a_projector_on_a_small_memo_writes_the_same_rows_within_it(api: Api) -> None:
    """The projector reads every changed statement at each new head; its memo keeps within its
    lines (decision 84: it grew by every batch's views before) and the rows are still the API's."""
    load_demo(api.services.log)
    projector = _projector(api.services, batch=25, memo_lines=40)
    assert projector.election.try_lead()
    projector.activate()
    heaviest = 0
    while projector.step():
        heaviest = max(heaviest, memo_held(projector.book.engine))
    assert 0 < heaviest <= 40
    assert projector.view.rows() == _expected(api, _participants(api))
    projector.election.resign()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_view_rebuild_shares_its_statements_with_forked_workers_as_configured(
    database_url: str, api: Api, workers: int
) -> None:
    """`LEDGER_VIEW_WORKERS` reaches `ledger rebuild --view`: with 2, a batch's statements are shared
    with a forked worker, whose rows come back exact (decision 131); the view's rows are the API's,
    as with 1, where nothing is forked."""
    from typer.testing import CliRunner

    from cli import app as cli_app

    load_demo(api.services.log)
    with eager_forks() as fork:
        result = CliRunner().invoke(cli_app, ["rebuild", "--view", "--restart", "--batch", "60"],
                                    env={"LEDGER_DATABASE_URL": database_url, "LEDGER_VIEW_WORKERS": str(workers)})
    assert result.exit_code == 0, result.output
    assert fork.called == (workers == 2)
    assert open_view(api.services.store).rows() == _expected(api, _participants(api))


def test_a_projector_with_forked_workers_writes_the_statements_of_the_api(api: Api) -> None:
    """`ledger project`'s batches, their statements shared with a forked worker (decision 131): the
    rows are the API's, deletes and closed rows included."""
    load_demo(api.services.log)
    projector = _projector(api.services, batch=30, workers=2)
    assert projector.election.try_lead()
    projector.activate()
    with eager_forks() as fork:
        assert projector.catch_up() == api.services.log.head
    assert fork.call_count >= 2  # a fork per batch with more than one participant to compute
    assert projector.view.rows() == _expected(api, _participants(api))
    projector.election.resign()


def test_a_service_keeps_ledger_memo_lines_and_answers_the_same(make_services: Callable[..., Services]) -> None:
    """`LEDGER_MEMO_LINES` bounds what a serving process keeps of computed statements (decision 84);
    statements read through a small memo are those of the default one."""
    roomy = make_services()
    load_demo(roomy.log)
    small = make_services(memo_lines=30)
    with TestClient(create_app(roomy)) as client_a, TestClient(create_app(small)) as client_b:
        a, b = Api(client_a, roomy), Api(client_b, small)
        participants = sorted(roomy.books.head.state.participants)
        for _ in range(2):  # the second pass reads what the small memo evicted
            for participant_id in participants:
                for period in PERIODS:
                    path = f"/v1/statements/{participant_id}/{period}"
                    expected = a.get(path)
                    assert expected.status_code == 200, expected.text
                    assert b.get(path).json() == expected.json()
                    assert memo_held(small.books.head.engine) <= 30
    assert memo_held(roomy.books.head.engine) > 10 * 30


def test_a_what_ifs_copy_of_the_books_keeps_to_the_services_memo_lines(
    make_services: Callable[..., Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A what-if's copy of the books (a new deal and its payment fork the state, decisions 93 and
    95) keeps its memo to `LEDGER_MEMO_LINES` too (the README sizes a process by it), and to
    `FORK_MEMO_LINES` below that (decision 99), and answers as a roomy one does."""
    import replay.whatif

    made: list[int] = []
    book = replay.whatif.Book

    def watched(*args: Any, **kwargs: Any) -> Book:
        copy = book(*args, **kwargs)
        made.append(copy.engine.memo_lines)
        return copy

    monkeypatch.setattr(replay.whatif, "Book", watched)
    roomy = make_services()
    load_demo(roomy.log)
    small = make_services(memo_lines=30)
    deal = {"event_id": "wi-deal", "type": "DealBooked", "data": {
        "deal_id": "wi-deal", "booked_on": "2026-08-12", "amount": "25000.00", "currency": "USD",
        "credits": [{"participant_id": "rep-alba", "share": "1"}]}}
    payment = {"event_id": "wi-pay", "type": "PaymentReceived", "data": {
        "payment_id": "wi-pay", "deal_id": "wi-deal", "amount": "25000.00", "received_on": "2026-08-20"}}
    body = {"events": [deal, payment], "periods": ["2026-08"], "participant_ids": ["rep-alba"]}
    answers = []
    for services in (roomy, small):
        with TestClient(create_app(services)) as client:
            response = client.post("/v1/what-if", json=body, headers=Api(client, services).headers)
            assert response.status_code == 200, response.text
            answers.append(response.json())
    assert made == [replay.whatif.FORK_MEMO_LINES, 30]
    assert replay.whatif.FORK_MEMO_LINES < MEMO_LINES
    assert answers[0] == answers[1]
    row = answers[1]["rows"][0]
    assert Decimal(row["difference"]) > 0 and row["difference"] == str(
        Decimal(row["total_with"]) - Decimal(row["total_now"])
    )


def test_a_view_rebuild_ends_at_the_head_it_found(database_url: str, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Events appended while it runs wait for the next run or `ledger project`: a rebuild that
    chased the head went on as long as appends did (here 200 arrive during its first batch)."""
    from typer.testing import CliRunner

    from cli import app as cli_app

    load_demo(api.services.log)
    head = api.services.log.head
    real_step = Projector.step
    arrived: list[int] = []

    def step(projector: Projector) -> int:
        if not arrived:
            credits = [{"participant_id": "rep-alba", "share": "1"}]
            arrived.extend(api.add("DealBooked", event_id=f"late-{i}", deal_id=f"late-{i}", booked_on="2026-03-02",
                                   amount="10.00", currency="USD", credits=credits) for i in range(200))
        return real_step(projector)

    monkeypatch.setattr(Projector, "step", step)
    result = CliRunner().invoke(cli_app, ["rebuild", "--view", "--batch", "100"],
                                env={"LEDGER_DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    assert f"the view is at position 0 of {head}" in result.output and f"\n{head} events in" in result.output
    assert arrived[-1] == head + 200
    view = open_view(api.services.store)
    assert view.position() == head
    assert [(b.first_position, b.last_position) for b in view.batches()] == [
        (first, min(first + 99, head)) for first in range(1, head + 1, 100)]


def test_a_view_rebuild_whose_election_cannot_reach_the_database_says_so(
    database_url: str, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not "a `ledger project` worker leads": the operator would look for a worker that is not there."""
    if not database_url.startswith("postgres"):
        pytest.skip("the election's session is PostgreSQL's")
    from typer.testing import CliRunner

    import replay.projector
    from cli import app as cli_app
    from ledger.election import election_for

    def unreachable(*args: Any) -> Any:
        election: Any = election_for(*args)
        election._kwargs = {**election._kwargs, "dbname": "no_such_ledger_database"}
        return election

    monkeypatch.setattr(replay.projector, "election_for", unreachable)
    result = CliRunner().invoke(cli_app, ["rebuild", "--view"], env={"LEDGER_DATABASE_URL": database_url})
    assert result.exit_code == 2, result.output
    assert "error: the projection's election cannot reach the database: OperationalError:" in result.output
    assert "no_such_ledger_database" in result.output and "leads the projection" not in result.output


def test_a_worker_whose_projection_keeps_failing_waits_longer_each_time(api: Api) -> None:
    """Each failure makes the leader fold the whole log again: a fault that recurs did that every
    `--poll` seconds, for ever. The waits double up to `RETRY_MAX_WAIT`, with the lead given up
    meanwhile (a standby may fare better); a step taken resets them."""
    from replay.projector import RETRY_MAX_WAIT

    projector = _projector(api.services)
    outcomes: Iterator[int | Exception] = iter([*[RuntimeError("refused")] * 4, 1, *[RuntimeError("refused")] * 12])

    def step() -> int:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    projector.step = step  # type: ignore[method-assign]

    class Stop(threading.Event):
        waits: ClassVar[list[tuple[float, bool]]] = []

        def is_set(self) -> bool:
            return len(self.waits) >= 16

        def wait(self, timeout: float | None = None) -> bool:
            assert timeout is not None
            self.waits.append((timeout, projector.election.leading()))
            return False

    stop = Stop()
    projector.run(stop, poll=0.2)
    assert [wait for wait, _ in stop.waits] == pytest.approx(
        [0.2, 0.4, 0.8, 1.6, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30, 30, 30, 30])
    assert RETRY_MAX_WAIT == 30
    assert not any(leading for _, leading in stop.waits)


def test_a_worker_asked_to_stop_while_it_folds_to_take_the_lead_stops_there(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A standby that wins the election folds the log up to the view's position first (about 25 s a
    million events); a SIGTERM meanwhile waited for the whole fold, longer than a container's grace
    before it is killed. Now the fold looks at the stop signal every `STOP_CHECK_EVERY` events: the
    worker stops there, logs where, writes nothing and gives up the lead."""
    import replay.projector as projector_module
    from ledger.damage import stored_events as real

    load_demo(api.services.log)
    first = _projector(api.services, "first")
    assert first.election.try_lead()
    first.activate()
    head = first.catch_up()
    first.election.resign()
    batches = first.view.batches()

    stop = threading.Event()

    def stored_events(*args: Any, **options: Any) -> Iterator[Any]:
        for count, item in enumerate(real(*args, **options), 1):
            if count == 120:
                stop.set()  # SIGTERM, as `ledger project` handles it
            yield item

    monkeypatch.setattr(projector_module, "stored_events", stored_events)
    monkeypatch.setattr(projector_module, "STOP_CHECK_EVERY", 50)
    second = _projector(api.services, "second")
    with caplog.at_level("INFO", logger="ledger.projector"):
        second.run(stop, poll=0.01)
    assert head > 150 and second.book.position == 150  # the first look after the signal
    assert [(r.getMessage(), getattr(r, "position", None)) for r in caplog.records][-1] == (
        "stopped while taking the lead", 150)
    assert not any(r.getMessage() == "projection interrupted" for r in caplog.records)
    assert not second.election.leading() and second.view.batches() == batches
    third = _projector(api.services, "third")
    assert third.election.try_lead()  # the lead was given up: a standby takes it at once
    third.election.resign()


def test_a_database_failure_in_a_command_is_one_line_and_exit_2(
    database_url: str, api: Api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database fault the command has no answer for (here the view's write) ends it in one line,
    not a traceback."""
    from eventsourcing.persistence import OperationalError

    import cli

    load_demo(api.services.log)

    def refused(projector: Projector) -> int:
        raise OperationalError("server closed the connection unexpectedly\n\tThis probably means...")

    monkeypatch.setattr(Projector, "step", refused)
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.setattr(sys, "argv", ["ledger", "rebuild", "--view"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.endswith("error: the database: OperationalError: server closed the connection unexpectedly "
                        "This probably means...\n")
