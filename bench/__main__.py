"""`python -m bench [--quick] [--database-url URL]`: measure the ledger against its baselines in one run.

Prints a table and one JSON line. Figures vary 10-30 % between runs on shared
machines: compare against the baselines measured in the same run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import httpx
import orjson
import psycopg

from bench import targets
from bench.generate import events
from bench.wire import Connection

TOKEN = "bench-admin-token"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(database_url: str) -> Iterator[str]:
    """`ledger serve` on a free port for the benchmark's clients; its base URL."""
    with service(database_url) as (url, _):
        yield url


@contextmanager
def service(database_url: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`server`, with the process (for figures read from `/proc`, as `bench.whatif` does)."""
    port = _free_port()
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url, "LEDGER_ADMIN_TOKEN": TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--port", str(port), *os.environ.get("BENCH_SERVE_ARGS", "").split()],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url, process
    finally:
        process.terminate()
        process.wait(30)


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] if len(samples) >= 2 else samples[0]


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def load_batches(url: str, envelopes: list[dict[str, Any]], size: int = 1000) -> float:
    """Batch appends of `size` events over HTTP, one client sending one batch after another
    (order matters: registrations before deals, deals before their payments); returns events/s.

    The client is a keep-alive `http.client` connection that encodes each body with orjson as it
    sends it. The client's own time is time the service waits for: with httpx's async client the
    same batches loaded 10-20 % slower, and the standard library's encoder took 2.3 ms of each.
    """
    host, port = url.removeprefix("http://").split(":")
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    connection = http.client.HTTPConnection(host, int(port), timeout=120)

    def run() -> None:
        for i in range(0, len(envelopes), size):
            connection.request("POST", "/v1/events/batch", body=orjson.dumps({"events": envelopes[i : i + size]}),
                               headers=headers)
            response = connection.getresponse()
            text = response.read()
            assert response.status in (200, 201), text[:500]

    try:
        return len(envelopes) / timed(run)
    finally:
        connection.close()


def single_appends(
    url: str, participants: int, clients: int, seconds: float = 0.0, until: Stop | None = None
) -> tuple[float, float]:
    """`clients` concurrent clients each appending one new deal per request, for `seconds` or
    `until` it is set; (events/s, p99 ms).

    Plain threads with a keep-alive connection each (`bench.wire`, decision 101): an asyncio
    HTTP client in one process saturates long before the service does, and `http.client` took
    as much of the machine's CPU per request as the service.
    """
    host, port = url.removeprefix("http://").split(":")
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    latencies: list[float] = []
    failures: list[str] = []
    stop = time.perf_counter() + seconds
    run_id = uuid.uuid4().hex[:8]

    def going() -> bool:
        return not until.is_set() if until is not None else time.perf_counter() < stop

    def client_loop(n: int) -> None:
        """A client whose connection fails stops, and its failure fails the run (a dead thread's
        exception alone would only be printed, and the others' rate reported)."""
        connection = Connection(host, int(port), headers)
        i = 0
        try:
            while going():
                i += 1
                body = json.dumps({
                    "event_id": f"s-{run_id}-{n}-{i}", "type": "DealBooked",
                    "data": {"deal_id": f"s-{run_id}-{n}-{i}", "booked_on": "2026-06-15", "amount": "1000.00",
                             "currency": "USD",
                             "credits": [{"participant_id": f"p{(n * 7 + i) % participants:05d}", "share": "1"}]}})
                started = time.perf_counter()
                status, text = connection.post("/v1/events", body.encode())
                latencies.append(time.perf_counter() - started)
                if status != 201:
                    failures.append(text[:300].decode())
        except Exception as error:  # whatever stops a client is the run's failure
            failures.append(f"client {n}: {error!r}")
        finally:
            connection.close()

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    assert not failures, failures[:3]
    return len(latencies) / elapsed, p99(latencies) * 1000


class Stop(Protocol):
    def is_set(self) -> bool: ...


def _load(url: str, participants: int, clients: int, stop: Stop, rate: Any) -> None:
    eps, _ = single_appends(url, participants, clients, until=stop)
    rate.value = eps
    if eps < 100:  # the load did not run: the measurement under it means nothing
        raise SystemExit(f"the load appended {eps:.0f} events/s")


def under_load(url: str, participants: int, work: Callable[[], float]) -> tuple[float, float]:
    """`work()` while 64 clients append single events (target 1's load), from a process of their
    own: in this one their threads would hold up the measuring client's; and the load's rate in
    events/s, to show it was target 1's. Fails if the load did not run all along."""
    context = multiprocessing.get_context("fork")  # no thread runs here now; spawn cannot find `_load` in `__main__`
    stop = context.Event()
    rate = context.Value("d", 0.0)
    load = context.Process(target=_load, args=(url, participants, 64, stop, rate))
    load.start()
    try:
        time.sleep(2)  # the load's clients connect and reach their pace
        assert load.is_alive(), "the load ended before the measurement"
        result = work()
        assert load.is_alive(), "the load ended during the measurement"
    finally:
        stop.set()
        load.join(60)
        if load.is_alive():
            load.kill()
            load.join()
    assert load.exitcode == 0, f"the load failed (exit code {load.exitcode})"
    return result, rate.value


def library_batches(database_url: str, count: int) -> float:
    """Baseline: the library's own `Application.save()`, 100 events per transaction, on a fresh schema."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    from ledger.settings import parse_database_url

    class Account(Aggregate):
        @event("Booked")
        def book(self, amount: str) -> None:
            self.amount = amount

    class LibraryBaseline(Application):
        name = "bench_lib"

    if _sqlite_path(database_url) is None:
        base, _, schema = database_url.partition("?schema=")
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    app = LibraryBaseline(env={**parse_database_url(database_url).env, "CREATE_TABLE": "y"})

    def run() -> None:
        for _ in range(count // 100):
            account = Account()  # its creation is the first of 100 events
            for _ in range(99):
                account.book("1000.00")
            app.save(account)

    eps = count / timed(run)
    app.close()
    return eps


def _sqlite_path(database_url: str) -> str | None:
    return database_url[len("sqlite:///") :] if database_url.startswith("sqlite:///") else None


def _stored_states(database_url: str) -> Iterator[bytes]:
    """Every stored event's row (its JSON), in position order."""
    path = _sqlite_path(database_url)
    if path is not None:
        with sqlite3.connect(path) as db:
            for (state,) in db.execute("SELECT state FROM ledger_events ORDER BY originator_version"):
                yield state
        return
    base, _, query = database_url.partition("?schema=")
    table = f'"{query}".ledger_events' if query else "ledger_events"
    with psycopg.connect(base) as conn, conn.cursor(name="scan") as cursor:
        cursor.itersize = 10_000
        cursor.execute(f"SELECT state FROM {table} ORDER BY originator_version")
        for (state,) in cursor:
            yield state


def raw_read_decode(database_url: str) -> float:
    """Baseline: read every stored row in order and JSON-decode it, with orjson as the issue's
    baseline does (decision 112; the standard library's parser, used before, took 1.7 times as long,
    so the rebuild's ratio to it looked better than it is)."""
    rows = 0
    started = time.perf_counter()
    for state in _stored_states(database_url):
        orjson.loads(state)
        rows += 1
    return rows / (time.perf_counter() - started)


def stored_deals_and_targets(database_url: str) -> Iterator[dict[str, Any]]:
    """The stored log's deals and targets (`type` and `data`, as in an envelope): the SQL baseline
    recomputes the log the rebuild folds, the single appends' deals included (decision 124)."""
    for state in _stored_states(database_url):
        body = orjson.loads(state)
        if body["type"] in ("DealBooked", "TargetSet"):
            yield body


def rebuild(database_url: str) -> dict[str, float]:
    """Fold the whole stored log into a fresh book, in a fresh process (peak memory included).

    The peak is the process's own (`VmHWM` on Linux): `getrusage`'s `ru_maxrss` survives `exec`, so
    a child started from this process, which holds the benchmark's million envelopes, reported
    this process's peak whenever it was the higher (until 2026-12-05's eighth session)."""
    code = (
        "import json,resource,sys,time;from ledger.settings import Settings;from replay.bootstrap import build;"
        "t=time.perf_counter();s=build(Settings(database_url=sys.argv[1],admin_token='x'));h=s.books.head;"
        "d=time.perf_counter()-t;print(json.dumps({'events':h.position,'seconds':d,'rss_mb':_peak_mb()}))"
    )
    return _in_a_fresh_process(code, database_url)


def view_rebuild(database_url: str, workers: int = 1) -> dict[str, float]:
    """`ledger rebuild --view --restart` in a fresh process: the persistent SQL statement view,
    every participant's statement of every period computed and written, resumable from its
    tracked position (decision 124); seconds, events and the process's own peak memory. With
    `workers` (`LEDGER_VIEW_WORKERS`, decision 131), also the most memory its forked workers held
    of their own at once (pages they copied), sampled every 0.1 s: the process's peak does not
    count it."""
    code = (
        "import json,sys,time;from cli import app;w=_watch_workers();t=time.perf_counter();"
        "code=app(['rebuild','--view','--restart'],standalone_mode=False);d=time.perf_counter()-t;"
        "assert not code,f'ledger rebuild --view stopped early (exit {code})';"
        "from ledger.settings import Settings,parse_database_url;from ledger.store import EventStore;"
        "s=EventStore(parse_database_url(Settings().database_url));h=s.head();s.close();"
        "print(json.dumps({'events':h,'seconds':d,'rss_mb':_peak_mb(),'workers_mb':w()}))"
    )
    return _in_a_fresh_process(code, database_url, {"LEDGER_VIEW_WORKERS": str(workers)})


def _in_a_fresh_process(code: str, database_url: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """The figures `code` prints last as JSON, run by a new interpreter on the ledger at
    `database_url` (as `sys.argv[1]` and `LEDGER_DATABASE_URL`), with `_peak_mb()` and
    `_watch_workers()` defined."""
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_MB + _WATCH_WORKERS + code, database_url], capture_output=True, text=True,
        check=True, env={**os.environ, "LEDGER_DATABASE_URL": database_url, **(env or {})},
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


#: The process's own peak resident memory in MB: `VmHWM` where there is /proc, else `ru_maxrss`
#: (which may be a parent's, see `rebuild`). Defines `_peak_mb()` in the child's code.
_PEAK_MB = """
def _peak_mb():
    import resource
    try:
        with open('/proc/self/status') as status:
            return next(int(line.split()[1]) for line in status if line.startswith('VmHWM:')) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""


#: Defines `_watch_workers()`: starts a thread that sums, every 0.1 s, the private memory of this
#: process's children (pages either process copied after the fork, or the child made), and returns
#: a function giving the most seen in MB (0 without /proc or without its `children` lists).
_WATCH_WORKERS = """
def _watch_workers():
    import os, threading, time
    seen = [0]

    def private_kb(pid):
        with open(f'/proc/{pid}/smaps_rollup') as rollup:
            return sum(int(line.split()[1]) for line in rollup if line.startswith(('Private_Clean', 'Private_Dirty')))

    def watch():
        me = os.getpid()
        while True:
            total = 0
            try:
                tasks = os.listdir(f'/proc/{me}/task')
            except OSError:
                return  # no /proc here
            for task in tasks:
                try:
                    with open(f'/proc/{me}/task/{task}/children') as children:
                        kids = children.read().split()
                except OSError:
                    continue  # a thread that ended meanwhile
                for kid in kids:
                    try:
                        total += private_kb(kid)
                    except OSError:
                        pass  # a worker that ended meanwhile
            seen[0] = max(seen[0], total)
            time.sleep(0.1)

    threading.Thread(target=watch, daemon=True).start()
    return lambda: seen[0] / 1024
"""


def sql_recompute(database_url: str, envelopes: Iterable[dict[str, Any]]) -> float:
    """Baseline: what a spreadsheet shop would run instead — one SQL statement over a plain deals
    table computing marginal commissions per participant and period (the generator's tiers)."""
    base, _, schema = database_url.partition("?schema=")
    target_of: dict[tuple[str, str], str] = {}
    rows = []
    for envelope in envelopes:
        data = envelope["data"]
        if envelope["type"] == "TargetSet":
            target_of[(data["participant_id"], data["period"])] = data["amount"]
        elif envelope["type"] == "DealBooked":
            for credit in data["credits"]:
                rows.append((len(rows), credit["participant_id"], data["booked_on"][:7], data["booked_on"],
                             data["amount"], credit["share"]))
    path = _sqlite_path(database_url)
    if path is not None:
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE sheet_credits (id integer, participant text, period text, booked_on text, "
                       "amount numeric, share numeric)")
            db.execute("CREATE TABLE sheet_targets (participant text, period text, target numeric)")
            db.executemany("INSERT INTO sheet_credits VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.executemany("INSERT INTO sheet_targets VALUES (?, ?, ?)", [(p, m, t) for (p, m), t in target_of.items()])
            db.execute("CREATE INDEX sheet_targets_key ON sheet_targets (participant, period)")
            db.commit()
            started = time.perf_counter()
            db.execute(_SHEET_SQL.replace("GREATEST", "max").replace("LEAST", "min").replace("::numeric", ""))
            db.commit()
            return time.perf_counter() - started
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute("CREATE TABLE sheet_credits (id bigint, participant text, period text, booked_on date, "
                     "amount numeric, share numeric)")
        conn.execute("CREATE TABLE sheet_targets (participant text, period text, target numeric)")
        with conn.cursor().copy("COPY sheet_credits FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        with conn.cursor().copy("COPY sheet_targets FROM STDIN") as copy:
            for (participant, period), target in target_of.items():
                copy.write_row((participant, period, target))
        conn.execute("ANALYZE sheet_credits")
        started = time.perf_counter()
        conn.execute(_SHEET_SQL)
        return time.perf_counter() - started


_SHEET_SQL = """
    CREATE TABLE sheet_commissions AS
    WITH c AS (
        SELECT s.id, s.participant, s.period, s.amount * s.share AS credit, t.target,
               COALESCE(SUM(s.amount * s.share) OVER (
                   PARTITION BY s.participant, s.period ORDER BY s.booked_on, s.id
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
        FROM sheet_credits s LEFT JOIN sheet_targets t USING (participant, period)
    ), tiers(low, high, rate) AS (VALUES (0::numeric, 0.8::numeric, 0.04::numeric),
                                        (0.8, 1.2, 0.08), (1.2, NULL, 0.12)),
    lines AS (
        SELECT c.id, c.participant, c.period, ROUND(SUM(GREATEST(0,
                 LEAST(c.before + c.credit, COALESCE(tiers.high * c.target, c.before + c.credit))
                 - GREATEST(c.before, tiers.low * c.target)) * tiers.rate), 2) AS line
        FROM c CROSS JOIN tiers GROUP BY c.id, c.participant, c.period
    )
    SELECT participant, period, SUM(line) AS commission FROM lines GROUP BY participant, period
"""


def catch_up_read(url: str) -> float:
    """The first statement read after the loads, ms: the books fold what the log took meanwhile
    (the follower leaves an import for a pause, decisions 49 and 62), and every read waits for that."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=600) as client:
        started = time.perf_counter()
        response = client.get("/v1/statements/p00001/2026-06")
        assert response.status_code == 200, response.text[:300]
        return (time.perf_counter() - started) * 1000


def read_your_writes(url: str, participants: int, samples: int) -> float:
    """Append one event, then read a statement with min_position = its position; p99 of the read, ms."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    latencies = []
    run_id = uuid.uuid4().hex[:8]
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        for i in range(samples):
            person = f"p{1 + i % (participants - 1):05d}"
            response = client.post("/v1/events", json={
                "event_id": f"ryw-{run_id}-{i}", "type": "TargetSet",
                "data": {"participant_id": person, "period": "2026-12", "amount": f"{1000 + i}.00"}})
            assert response.status_code == 201, response.text[:300]
            position = response.json()["position"]
            started = time.perf_counter()
            read = client.get(f"/v1/statements/{person}/2026-12", params={"min_position": position})
            latencies.append(time.perf_counter() - started)
            assert read.status_code == 200 and read.json()["target"] == f"{1000 + i}.00", read.text[:300]
    return p99(latencies) * 1000


def what_if_question(participants: int) -> dict[str, Any]:
    """The benchmark's what-if (decision 54): a retroactive version of plan `ae` from January, for
    the first 1,000 participants' June and December statements."""
    people = [f"p{i:05d}" for i in range(1, min(participants, 1001))]
    return {"events": [{"event_id": "wi", "type": "PlanPublished", "data": {
        "plan_id": "ae", "effective_from": "2026-01-01", "rules": {
            "period": "month", "basis": "booking", "tier_method": "retroactive",
            "tiers": [{"from": "0", "rate": "0.05"}, {"from": "1.0", "rate": "0.1"}], "cap": None,
            "spiffs": [], "clawback_days": None, "override_rate": "0"}}}],
        "periods": ["2026-06", "2026-12"], "participant_ids": people}


def read_samples(client: httpx.Client, participants: int, head: int, samples: int) -> dict[str, list[float]]:
    """The benchmark's reads (`samples` each of statements, rankings and as-of statements, seeded),
    seconds per kind; `bench.whatif --bench-reads` makes them too, to ask its what-if after them."""
    rng = random.Random(1)
    out: dict[str, list[float]] = {"statement": [], "ranking": [], "asof": []}
    for _ in range(samples):
        person = f"p{rng.randrange(1, participants):05d}"
        month = f"2026-{rng.randrange(1, 13):02d}"
        team = f"team-{rng.randrange(participants // 500 or 1)}"
        old = rng.randrange(14 * participants + 3, head)  # after the set-up events
        # Someone else's statement, of another month: the one just read would be in the memo
        # (a closed month read after its close is the statement as it stood then, decision 124).
        then = (f"p{rng.randrange(1, participants):05d}", f"2026-{rng.randrange(1, 13):02d}")
        for kind, path, params in (
            ("statement", f"/v1/statements/{person}/{month}", {}),
            ("ranking", "/v1/rankings", {"period": month, "team_id": team}),
            ("asof", f"/v1/statements/{then[0]}/{then[1]}", {"as_of_position": old}),
        ):
            started = time.perf_counter()
            response = client.get(path, params=params)
            out[kind].append(time.perf_counter() - started)
            assert response.status_code == 200, response.text[:300]
    return out


def reads(url: str, participants: int, head: int, samples: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        out = read_samples(client, participants, head, samples)
        body = what_if_question(participants)
        started = time.perf_counter()
        response = client.post("/v1/what-if", json=body)
        whatif = time.perf_counter() - started
        assert response.status_code == 200, response.text[:300]
    return {
        "statement_p99_ms": p99(out["statement"]) * 1000,
        "ranking_p99_ms": p99(out["ranking"]) * 1000,
        "asof_p99_ms": p99(out["asof"]) * 1000,
        "whatif_s": whatif,
    }


def cold_rankings(database_url: str, participants: int, samples: int) -> float:
    """p99 ms of team rankings in a service just started on the ledger, each team and month asked
    once: nothing computed before (`ranking_p99_ms` is measured after an import, whose warm has
    computed the recent months' rows: decisions 108 and 124)."""
    teams = participants // 500 or 1
    pairs = [(f"team-{t}", f"2026-{m:02d}") for t in range(teams) for m in range(1, 13)]
    random.Random(2).shuffle(pairs)
    latencies = []
    with server(database_url) as base, httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
    ) as client:
        for team, month in pairs[:samples]:
            started = time.perf_counter()
            response = client.get("/v1/rankings", params={"period": month, "team_id": team})
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text[:300]
    return p99(latencies) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="100k events, 1,000 participants (a few minutes)")
    parser.add_argument("--database-url", default=os.environ.get("LEDGER_BENCH_POSTGRES_URL", DEFAULT_PG))
    parser.add_argument("--sqlite", action="store_true", help="the embedded SQLite store (a temporary file)")
    parser.add_argument("--churn", type=float, default=0.0,
                        help="add a CRM's corrections at this multiple of bench.generate's rates (1: amended "
                             "and cancelled deals, reversed payments, transfers, adjustments); default none")
    args = parser.parse_args()
    participants, total = (1_000, 100_000) if args.quick else (10_000, 1_000_000)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    scratch = tempfile.mkdtemp(prefix="ledger-bench-") if args.sqlite else None
    url = f"sqlite:///{scratch}/bench.db" if scratch else f"{args.database_url}?schema={schema}"
    results: dict[str, Any] = {"database": "sqlite" if scratch else "postgresql", "events": total,
                               "participants": participants}
    if args.churn:
        results["churn"] = args.churn

    def note(**figures: Any) -> None:
        results.update(figures)
        print(", ".join(f"{k}={v:,.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()),
              file=sys.stderr, flush=True)

    try:
        envelopes = list(events(participants, total, churn=args.churn))
        if args.churn:
            results["events"] = len(envelopes)  # the corrections come on top of the count asked for
        with server(url) as base:
            note(batch_append_eps=load_batches(base, envelopes))
            eps, latency = single_appends(base, participants, clients=64, seconds=10 if args.quick else 20)
            note(single_append_eps=eps, single_append_p99_ms=latency)
            samples = 100 if args.quick else 300
            note(catch_up_read_ms=catch_up_read(base))
            note(**reads(base, participants, len(envelopes), samples=samples))
            ryw, load = under_load(base, participants, lambda: read_your_writes(base, participants, samples))
            note(ryw_p99_ms=ryw, ryw_load_eps=load)
        note(lib_batch_eps=library_batches(url, 20_000 if args.quick else 100_000))
        note(raw_read_decode_eps=raw_read_decode(url))
        rebuilt = rebuild(url)
        note(rebuild_s=rebuilt["seconds"], rebuild_eps=rebuilt["events"] / rebuilt["seconds"],
             rebuild_peak_rss_mb=rebuilt["rss_mb"])
        viewed = view_rebuild(url)
        note(view_rebuild_s=viewed["seconds"], view_rebuild_eps=viewed["events"] / viewed["seconds"],
             view_rebuild_peak_rss_mb=viewed["rss_mb"])
        viewed = view_rebuild(url, workers=2)
        note(view_rebuild_2w_s=viewed["seconds"], view_rebuild_2w_eps=viewed["events"] / viewed["seconds"],
             view_rebuild_2w_peak_rss_mb=viewed["rss_mb"], view_rebuild_2w_worker_mb=viewed["workers_mb"])
        del envelopes  # the baseline's data is the stored log's, below
        note(sql_recompute_s=sql_recompute(url, stored_deals_and_targets(url)))
        note(ranking_cold_p99_ms=cold_rankings(url, participants, samples))
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    width = max(len(k) for k in results)
    for key, value in results.items():
        shown = f"{value:,.1f}" if isinstance(value, float) else (f"{value:,}" if isinstance(value, int) else value)
        print(f"{key.ljust(width)}  {shown}")
    print()
    if scratch or args.quick:
        print("The issue's targets are set for 1M events on PostgreSQL; this run's, for reference only:")
    try:
        print(targets.table(targets.checks(results)))
    except Exception as error:  # the figures and their JSON line matter more than their verdicts
        print(f"the targets could not be judged: {error!r}", file=sys.stderr)
    print(json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in results.items()}))


if __name__ == "__main__":
    main()
