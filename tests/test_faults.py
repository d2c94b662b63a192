"""Crashes and faults (issue 4), against REAL `ledger serve` processes.

1. SIGKILL in the middle of a 10,000-event batch, on both backends: after a
   restart the batch is wholly there or wholly absent, positions are
   contiguous, the chain verifies, and sending the batch again is idempotent.
2. A PostgreSQL outage under load (a TCP proxy between the service and the
   real server is cut and restored; the server itself is never touched):
   every answer while it is down is a prompt 503, `/readyz` is 503, the
   service recovers by itself, and every event that got a 2xx is stored once.
3. Writes refused: a full disk on SQLite (RLIMIT_FSIZE on the server
   process, which works as root) and a read-only PostgreSQL role
   (`default_transaction_read_only`): appends get a clear 503 body, nothing
   is stored, reads keep working, nothing is corrupted.

Every server process is killed in teardown; every loop is bounded; all
traffic stays on 127.0.0.1. Figures are printed (run with `-s` to see them).
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import httpx
import psycopg
import pytest

from tests.processes import AUTH, CLIENT_TIMEOUT, Server, free_port

pytestmark = pytest.mark.slow


JSON = {**AUTH, "Content-Type": "application/json"}
BATCH = 10_000


def _report(line: str) -> None:
    print(f"[faults] {line}", flush=True)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    made: list[Server] = []

    def make(database_url: str, file_size_limit: int | None = None, name: str = "") -> Server:
        server = Server(database_url, tmp_path / f"logs{name}{len(made)}", file_size_limit)
        made.append(server)
        return server

    yield make
    for server in made:
        server.kill()


# --- ledger helpers -------------------------------------------------------------------------


def _register(client: httpx.Client, participant_id: str = "r1") -> None:
    response = client.post(
        "/v1/events",
        json={
            "event_id": f"reg-{participant_id}",
            "type": "ParticipantRegistered",
            "data": {"participant_id": participant_id, "name": "Rep", "team_id": "t", "start_date": "2020-01-01"},
        },
    )
    assert response.status_code in (200, 201), response.text


def _deal(event_id: str, participant_id: str = "r1") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "DealBooked",
        "data": {
            "deal_id": f"d-{event_id}",
            "booked_on": "2026-01-05",
            "amount": "100.00",
            "currency": "USD",
            "credits": [{"participant_id": participant_id, "share": "1"}],
        },
    }


def _batch_body(prefix: str, size: int = BATCH) -> bytes:
    return json.dumps({"events": [_deal(f"{prefix}{i}") for i in range(size)]}).encode("utf-8")


def _all_events(client: httpx.Client, after: int = 0) -> list[dict[str, Any]]:
    """The log after a position, through GET /v1/events."""
    events: list[dict[str, Any]] = []
    for _ in range(1_000):  # bounded: 10 million events
        response = client.get("/v1/events", params={"after": after, "limit": 10_000})
        assert response.status_code == 200, response.text
        page = response.json()
        if not page["events"]:
            return events
        events += page["events"]
        after = page["next_after"]
    raise AssertionError("the event log did not end")


def _check_log(client: httpx.Client) -> list[dict[str, Any]]:
    """The whole log: contiguous positions, each event_id once, and the hash chain verifies."""
    events = _all_events(client)
    assert [e["position"] for e in events] == list(range(1, len(events) + 1))
    ids = [e["event_id"] for e in events]
    assert len(ids) == len(set(ids)), "an event_id is stored twice"
    _verify(client, len(events))
    return events


def _verify(client: httpx.Client, events: int) -> None:
    """GET /v1/audit/verify: the hash chain recomputed from storage holds, over `events` events."""
    verdict = client.get("/v1/audit/verify")
    assert verdict.status_code == 200, verdict.text
    assert verdict.json()["ok"] is True, verdict.text
    assert verdict.json()["events_checked"] == events, verdict.text


def _assert_clear_error(response: httpx.Response, allowed: tuple[int, ...] = (503,)) -> None:
    assert response.status_code in allowed, (response.status_code, response.text)
    body = response.json()
    assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str), body
    assert "Traceback" not in response.text


# --- 1. SIGKILL in the middle of a large batch ---------------------------------------------------


@dataclass
class _Sent:
    """One request sent from a thread: its answer, or the transport error that replaced it."""

    status: int | None = None
    error: str | None = None
    seconds: float = 0.0
    posting: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


def _send_in_thread(base: str, body: bytes) -> _Sent:
    sent = _Sent()

    def run() -> None:
        started = time.monotonic()
        try:
            with httpx.Client(base_url=base, headers=JSON, timeout=60.0) as client:
                assert client.get("/healthz").status_code == 200  # connected: the kill cannot precede the request
                started = time.monotonic()
                sent.posting.set()
                sent.status = client.post("/v1/events/batch", content=body).status_code
        except httpx.TransportError as error:
            sent.error = type(error).__name__
        finally:
            sent.seconds = time.monotonic() - started
            sent.done.set()

    threading.Thread(target=run, daemon=True).start()
    return sent


class _WriterWatch:
    """Sees, from outside the server, whether it is inside its write transaction right now."""

    def __init__(self, database_url: str) -> None:
        self._sqlite: sqlite3.Connection | None = None
        self._pg: psycopg.Connection[Any] | None = None
        if database_url.startswith("sqlite:///"):
            path = database_url[len("sqlite:///") :]
            self._sqlite = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
        else:
            parsed = urlparse(database_url)
            self._schema = parsed.query.split("schema=", 1)[1]
            self._pg = psycopg.connect(urlunparse(parsed._replace(query="")), autocommit=True)

    def writing(self) -> bool:
        if self._sqlite is not None:
            # The server's transaction takes SQLite's write lock at its first INSERT and keeps it to COMMIT.
            try:
                self._sqlite.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return True
            self._sqlite.execute("ROLLBACK")
            return False
        assert self._pg is not None
        # A backend with a transaction id has written; its statement names this test's schema.
        row = self._pg.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_xid IS NOT NULL"
            " AND pid <> pg_backend_pid() AND position(%s in query) > 0",
            (self._schema,),
        ).fetchone()
        return bool(row and row[0])

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            self._pg.close()


def _kill_when(server: Server, sent: _Sent, watch: _WriterWatch, mode: str) -> str:
    """Kill the server at a moment chosen by `mode`; say what the watch saw."""
    assert sent.posting.wait(30), "the request was never sent"
    deadline = time.monotonic() + 30.0
    if mode.startswith("after "):
        time.sleep(float(mode.split()[1]))
        server.kill()
        return "timed"
    seen_writing = False
    while time.monotonic() < deadline and not sent.done.is_set():
        writing = watch.writing()
        if mode == "in-transaction" and writing:
            server.kill()
            return "killed while the insert transaction was open"
        if mode == "after-commit" and seen_writing and not writing:
            server.kill()
            return "killed after the transaction ended, before the answer"
        seen_writing = seen_writing or writing
        time.sleep(0.001)
    server.kill()
    return "the watch never fired (killed after the answer)"


def test_sigkill_in_the_middle_of_a_large_batch(database_url: str, servers: Callable[..., Server]) -> None:
    server = servers(database_url)
    server.start()
    with server.client() as client:
        _register(client)
    backend = "sqlite" if database_url.startswith("sqlite") else "postgres"
    modes = ["after 0.15", "in-transaction", "after-commit"]
    landed = 0
    head = 1  # the registration
    for attempt, mode in enumerate(modes):
        prefix = f"k{attempt}-"
        batch_ids = [f"{prefix}{i}" for i in range(BATCH)]
        body = _batch_body(prefix)
        watch = _WriterWatch(database_url)
        try:
            sent = _send_in_thread(server.base, body)
            how = _kill_when(server, sent, watch, mode)
        finally:
            watch.close()
        assert sent.done.wait(60), "the client never returned"
        landed += sent.status is None
        restart = server.start()
        with server.client(timeout=60.0) as client:
            tail = _all_events(client, after=head)
            stored = len(tail)
            assert stored in (0, BATCH), f"{stored} of {BATCH} events of a killed batch are stored"
            assert [e["event_id"] for e in tail] == batch_ids[:stored]
            assert [e["position"] for e in tail] == list(range(head + 1, head + 1 + stored))
            _verify(client, head + stored)
            if sent.status is not None:
                assert sent.status == 201 and stored == BATCH, (sent.status, stored)
            again = client.post("/v1/events/batch", content=body, headers=JSON)
            assert again.status_code == (200 if stored else 201), again.text
            results = again.json()["results"]
            assert [r["event_id"] for r in results] == batch_ids
            assert all(r["duplicate"] is bool(stored) for r in results)
            assert [r["position"] for r in results] == list(range(head + 1, head + 1 + BATCH))
            third = client.post("/v1/events/batch", content=body, headers=JSON)
            assert third.status_code == 200 and all(r["duplicate"] for r in third.json()["results"])
            assert [r["position"] for r in third.json()["results"]] == [r["position"] for r in results]
            assert [e["event_id"] for e in _all_events(client, after=head)] == batch_ids  # each exactly once
            head += BATCH
        _report(
            f"{backend} kill {attempt + 1} ({mode}): {how}; answer={sent.status or sent.error}"
            f" after {sent.seconds:.2f}s; batch after restart: {'all' if stored else 'none'} of {BATCH};"
            f" resend {again.status_code}; restart took {restart:.2f}s; log now {head} events"
        )
    with server.client(timeout=60.0) as client:
        assert len(_check_log(client)) == head
    server.stop()
    _report(f"{backend}: {landed} of {len(modes)} kills landed while the request was in flight")
    assert landed >= 1, "no kill landed while the batch was being processed"


# --- 2. PostgreSQL outage under load ---------------------------------------------------------------


class TcpProxy:
    """127.0.0.1:<port> → the PostgreSQL server; `cut` closes every connection and refuses new ones."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._up = threading.Event()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._listener = listener
        self._up.set()
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def _accept(self, listener: socket.socket) -> None:
        while self._up.is_set():
            try:
                downstream, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                downstream.close()
                continue
            downstream.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                if not self._up.is_set():
                    downstream.close()
                    upstream.close()
                    return
                self._sockets |= {downstream, upstream}
            threading.Thread(target=self._pump, args=(downstream, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, downstream), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            for _ in range(10_000_000):  # bounded; ends when either side closes
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(source)
            self._drop(sink)

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()

    def cut(self) -> None:
        """Like a database server going away: open connections break, new ones are refused."""
        self._up.clear()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            doomed = list(self._sockets)
        for sock in doomed:
            self._drop(sock)

    def url_for(self, database_url: str) -> str:
        """The same database, user and `?schema=`, reached through the proxy."""
        parsed = urlparse(database_url)
        credentials = parsed.netloc.rpartition("@")[0]
        return urlunparse(parsed._replace(netloc=f"{credentials}@127.0.0.1:{self.port}" if credentials else
                                          f"127.0.0.1:{self.port}"))


@dataclass
class _Call:
    kind: str
    started: float
    ended: float
    status: int | None
    error: str | None  # the transport error instead of an answer, or the error code of an error body
    event_ids: list[str]


class _Load:
    """A few client threads appending small batches as fast as the service answers."""

    def __init__(self, base: str, threads: int = 4) -> None:
        self.base = base
        self.threads = threads
        self.calls: list[_Call] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def _record(self, call: _Call) -> None:
        with self._lock:
            self.calls.append(call)

    def _writer(self, worker: int) -> None:
        with httpx.Client(base_url=self.base, headers=AUTH, timeout=CLIENT_TIMEOUT) as client:
            for n in range(5_000):  # bounded in count (and by the stop flag in time)
                if self._stop.is_set():
                    return
                size = 1 + n % 3
                events = [_deal(f"w{worker}-{n}-{i}") for i in range(size)]
                started = time.monotonic()
                try:
                    if size == 1:
                        response = client.post("/v1/events", json=events[0])
                    else:
                        response = client.post("/v1/events/batch", json={"events": events})
                    status, error = response.status_code, None
                    if status >= 400:
                        error = _error_code(response)
                except httpx.TransportError as problem:
                    status, error = None, type(problem).__name__
                self._record(_Call("append", started, time.monotonic(), status, error, [e["event_id"] for e in events]))

    def _prober(self) -> None:
        with httpx.Client(base_url=self.base, timeout=CLIENT_TIMEOUT) as client:
            for _ in range(5_000):
                if self._stop.is_set():
                    return
                started = time.monotonic()
                try:
                    response = client.get("/readyz")
                    status, error = response.status_code, None if response.status_code < 400 else _error_code(response)
                except httpx.TransportError as problem:
                    status, error = None, type(problem).__name__
                self._record(_Call("readyz", started, time.monotonic(), status, error, []))
                time.sleep(0.5)

    def start(self) -> None:
        self._workers = [threading.Thread(target=self._writer, args=(w,), daemon=True) for w in range(self.threads)]
        self._workers.append(threading.Thread(target=self._prober, daemon=True))
        for worker in self._workers:
            worker.start()

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=CLIENT_TIMEOUT + 5)
        assert not any(w.is_alive() for w in self._workers), "a client thread is stuck"

    def appends_since(self, moment: float) -> list[_Call]:
        with self._lock:
            return [c for c in self.calls if c.kind == "append" and c.started >= moment]


def _error_code(response: httpx.Response) -> str:
    """The `error` of a JSON error body; anything else (a bare 500, a stack trace) is 'unclear'."""
    try:
        code = response.json().get("error")
    except ValueError:
        return "unclear"
    return code if isinstance(code, str) and "Traceback" not in response.text else "unclear"


def _latencies(calls: list[_Call]) -> str:
    if not calls:
        return "none"
    took = sorted(c.ended - c.started for c in calls)
    return f"min {took[0]:.2f}s, median {took[len(took) // 2]:.2f}s, max {took[-1]:.2f}s"


def _codes(calls: list[_Call]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in calls:
        key = str(call.status) if call.status is not None else str(call.error)
        counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.mark.postgres
def test_postgres_outage_under_load(database_url: str, servers: Callable[..., Server]) -> None:
    if not database_url.startswith("postgres"):
        pytest.skip("the outage is of a PostgreSQL server")
    parsed = urlparse(database_url)
    proxy = TcpProxy(parsed.hostname or "127.0.0.1", parsed.port or 5432)
    proxy.start()
    try:
        server = servers(proxy.url_for(database_url))
        server.start()
        with server.client() as client:
            _register(client)
        load = _Load(server.base)
        load.start()
        try:
            time.sleep(1.5)
            proxy.cut()
            cut_at = time.monotonic()  # once open connections are broken, not when the cut began
            time.sleep(8.0)
            restored_at = time.monotonic()
            proxy.start()
            recovered_at = None
            for _ in range(600):  # at most 60 s
                if any(c.status in (200, 201) for c in load.appends_since(restored_at)):
                    recovered_at = time.monotonic()
                    break
                time.sleep(0.1)
            time.sleep(1.0)
        finally:
            load.stop()
        _check_outage(server, load, cut_at, restored_at, recovered_at)
        server.stop()
    finally:
        proxy.cut()


def _check_outage(server: Server, load: _Load, cut_at: float, restored_at: float, recovered_at: float | None) -> None:
    calls = list(load.calls)
    appends = [c for c in calls if c.kind == "append"]
    probes = [c for c in calls if c.kind == "readyz"]
    inside = [c for c in appends if c.started >= cut_at and c.ended <= restored_at]
    probes_inside = [c for c in probes if c.started >= cut_at and c.ended <= restored_at]
    straddling = [c for c in appends if c.started < restored_at and c.ended > cut_at and c not in inside]
    _report(f"outage: proxy cut for {restored_at - cut_at:.2f}s; {len(appends)} appends, codes {_codes(appends)}")
    _report(f"  appends sent and answered while down: {len(inside)}, codes {_codes(inside)}, {_latencies(inside)}")
    _report(f"  appends across cut/restore: {len(straddling)}, codes {_codes(straddling)}, {_latencies(straddling)}")
    _report(f"  /readyz while down: {len(probes_inside)}, codes {_codes(probes_inside)}, {_latencies(probes_inside)}")
    _report(f"  all /readyz: codes {_codes(probes)}; "
            f"recovered {None if recovered_at is None else round(recovered_at - restored_at, 2)}s after restore")
    assert all(c.error == "unavailable" for c in calls if c.status == 503), "a 503 without a clear body"
    late = [c for c in calls if c.status is None]
    assert not late, f"requests without an answer within {CLIENT_TIMEOUT}s: {_codes(late)}"
    assert all(c.status in (200, 201, 503) for c in calls if c.kind == "append"), _codes(appends)
    # Sent and answered while the database was away: only 503 is possible, and it comes promptly.
    assert all(c.status == 503 for c in inside), _codes(inside)
    assert any(c.status == 503 and cut_at < c.ended < restored_at for c in appends), "no 503 while down"
    assert probes_inside and all(c.status == 503 for c in probes_inside), _codes(probes_inside)
    assert recovered_at is not None, "the service did not recover after the database came back"

    accepted = [i for c in appends if c.status in (200, 201) for i in c.event_ids]
    refused = [i for c in appends if c.status == 503 for i in c.event_ids]
    with server.client(timeout=60.0) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        events = _check_log(client)
        stored = [e["event_id"] for e in events]
        lost = set(accepted) - set(stored)
        duplicated = len(stored) - len(set(stored))
        stored_anyway = set(refused) & set(stored)
        _report(f"  accepted events {len(accepted)}, lost {len(lost)}, duplicated {duplicated}; "
                f"503-answered events {len(refused)}, of which stored anyway {len(stored_anyway)}")
        assert not lost and duplicated == 0
        # A 503 can hide a commit that reached PostgreSQL just as the connection broke: only for
        # requests in flight at the cut (a group commit may carry several), never for one sent later.
        ambiguous = [c for c in appends if c.status == 503 and set(c.event_ids) & stored_anyway]
        _report(f"  requests answered 503 but stored (in flight at the cut): {len(ambiguous)}")
        assert all(c.started < cut_at for c in ambiguous), [(c.started - cut_at, c.event_ids) for c in ambiguous]
        # Whatever got a 503 can simply be sent again: stored once, never twice.
        retry = [_deal(i) for i in refused]
        for start in range(0, len(retry), 1000):
            response = client.post("/v1/events/batch", json={"events": retry[start : start + 1000]})
            assert response.status_code in (200, 201), response.text
        final = [e["event_id"] for e in _check_log(client)]
        assert set(accepted) | set(refused) <= set(final)
        assert len(final) == len(set(final))


# --- 3. Writes refused: a full disk (SQLite), a read-only database (PostgreSQL) ------------------


def _refused_appends(client: httpx.Client, prefix: str, single: bool = True) -> list[str]:
    """An append of one event (if `single`) and of a 10,000-event batch: each a clear error; return timings."""
    timings = []
    if single:
        started = time.monotonic()
        one = client.post("/v1/events", json=_deal(f"{prefix}one"))
        _assert_clear_error(one)
        timings.append(f"single {one.status_code} in {time.monotonic() - started:.2f}s ({one.json()['message']})")
    started = time.monotonic()
    many = client.post("/v1/events/batch", content=_batch_body(prefix), headers={"Content-Type": "application/json"})
    _assert_clear_error(many)
    took = time.monotonic() - started
    timings.append(f"batch of {BATCH} {many.status_code} in {took:.2f}s ({many.json()['message']})")
    return timings


def _reads_still_work(client: httpx.Client, expected: int) -> None:
    events = _check_log(client)
    assert len(events) == expected, (len(events), expected)
    statement = client.get("/v1/statements/r1/2026-01")
    assert statement.status_code == 200, statement.text


def _sqlite_disk_full(database_url: str, servers: Callable[..., Server]) -> None:
    path = Path(database_url[len("sqlite:///") :])
    server = servers(database_url)
    server.start()
    with server.client() as client:
        _register(client)
        for i in range(5):
            assert client.post("/v1/events", json=_deal(f"before-{i}")).status_code == 201
    server.stop()
    used = max((p.stat().st_size for p in path.parent.glob(path.name + "*")), default=0)
    limit = used + 256 * 1024  # room for small appends, not for 10,000 events (about 2 MB)
    full = servers(database_url, file_size_limit=limit, name="full")
    full.start()
    with full.client() as client:
        assert client.post("/v1/events", json=_deal("fits-0")).status_code == 201
        timings = _refused_appends(client, "big-", single=False)
        _reads_still_work(client, expected=7)
        # The failed transaction left nothing behind: what fits is still accepted.
        fits = client.post("/v1/events", json=_deal("fits-1"))
        assert fits.status_code == 201, fits.text
        ready = client.get("/readyz").status_code
    full.kill()
    assert "Traceback" not in full.log_text()
    _report(f"sqlite disk full (RLIMIT_FSIZE {limit} bytes): {'; '.join(timings)}; /readyz {ready}")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    server = servers(database_url, name="after")
    server.start()
    with server.client(timeout=60.0) as client:
        _reads_still_work(client, expected=8)
        again = client.post("/v1/events/batch", content=_batch_body("big-"), headers=JSON)
        assert again.status_code == 201, again.text
        assert len(_check_log(client)) == 8 + BATCH
    server.stop()


@contextlib.contextmanager
def _login_role(base_url: str) -> Iterator[str]:
    """A throwaway role that may create its own schema; dropped, with all it owns, afterwards."""
    role = f"ledger_ro_{uuid.uuid4().hex[:10]}"
    dbname = urlparse(base_url).path.lstrip("/") or "postgres"
    with psycopg.connect(base_url, autocommit=True) as admin:
        row = admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        if not (row and row[0]):
            pytest.skip("the read-only case creates a role and ends its sessions: it needs a superuser")
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute(f'GRANT CREATE ON DATABASE "{dbname}" TO "{role}"')
    try:
        yield role
    finally:
        with psycopg.connect(base_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            admin.execute(f'DROP OWNED BY "{role}" CASCADE')
            admin.execute(f'DROP ROLE "{role}"')


def _reconnect_role(admin: psycopg.Connection[Any], role: str) -> None:
    """End the role's sessions (as a failover would): the service's pool opens new ones."""
    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
    for _ in range(100):
        row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (role,)).fetchone()
        if row is not None and row[0] == 0:
            return
        time.sleep(0.05)


def _postgres_read_only(database_url: str, servers: Callable[..., Server]) -> None:
    parsed = urlparse(database_url)
    base_url = urlunparse(parsed._replace(query=""))
    schema = parsed.query.split("schema=", 1)[1]
    with _login_role(base_url) as role, psycopg.connect(base_url, autocommit=True) as admin:
        host = parsed.hostname or "127.0.0.1"
        server = servers(urlunparse(parsed._replace(netloc=f"{role}@{host}:{parsed.port or 5432}")))

        def stored() -> int:
            row = admin.execute(f'SELECT count(*) FROM "{schema}".ledger_events').fetchone()
            return int(row[0]) if row else -1

        try:
            server.start()
            timings, ready, recovered = _read_only_phases(server, admin, role, stored)
        finally:
            server.kill()  # before the role is dropped
        assert "Traceback" not in server.log_text()
        _report(f"postgres read-only role: {'; '.join(timings)}; /readyz {ready}; writable again after"
                f" {recovered} retries")


def _read_only_phases(
    server: Server, admin: psycopg.Connection[Any], role: str, stored: Callable[[], int]
) -> tuple[list[str], int, int]:
    """Writable, then read-only (sessions renewed as after a failover), then writable again."""
    with server.client() as client:
        _register(client)
        for i in range(5):
            assert client.post("/v1/events", json=_deal(f"before-{i}")).status_code == 201
        admin.execute(f'ALTER ROLE "{role}" SET default_transaction_read_only = on')
        _reconnect_role(admin, role)
        timings = _refused_appends(client, "ro-")
        assert stored() == 6
        _reads_still_work(client, expected=6)
        ready = client.get("/readyz").status_code  # reported: the database answers reads
        admin.execute(f'ALTER ROLE "{role}" RESET default_transaction_read_only')
        _reconnect_role(admin, role)
        recovered = None
        for attempt in range(50):  # the service recovers without a restart
            if client.post("/v1/events", json=_deal("after")).status_code in (200, 201):
                recovered = attempt
                break
            time.sleep(0.2)
        assert recovered is not None
        assert stored() == 7
        assert len(_check_log(client)) == 7
    return timings, ready, recovered


def test_refused_writes_give_a_clear_error_and_store_nothing(
    database_url: str, servers: Callable[..., Server]
) -> None:
    if database_url.startswith("sqlite"):
        _sqlite_disk_full(database_url, servers)
    else:
        _postgres_read_only(database_url, servers)
