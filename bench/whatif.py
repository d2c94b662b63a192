"""`python -m bench.whatif [--events N] [--runs R] [--bench-reads] [--churn X]`: the benchmark's what-if, on its own.

Loads the benchmark's ledger as `python -m bench` does (its batches, 20 s of single appends from
64 clients, the first read, a round of 300 cold statement reads, or with `--bench-reads` the
benchmark's own 900 statement, ranking and as-of reads) into a fresh PostgreSQL schema, then
asks its what-if R times (default 2: cold, then warm) and prints, for each, the seconds and what
the service process spent meanwhile: CPU in user space and in the kernel, and minor page faults
(from `/proc/<pid>/stat`, so Linux only; a forked worker's own are not counted). For studying
the what-if's spread between runs (decision 61) in minutes, and for comparing settings such as
`LEDGER_WHAT_IF_WORKERS`, which the service reads from this process's environment. `--churn` adds
a CRM's corrections to the ledger, as `python -m bench --churn` does (`bench.generate`).
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from bench.__main__ import (
    DEFAULT_PG,
    TOKEN,
    catch_up_read,
    load_batches,
    read_samples,
    service,
    single_appends,
    what_if_question,
)
from bench.generate import events

PARTICIPANTS = 10_000


def _process_times(pid: int) -> tuple[float, float, int]:
    """(user s, kernel s, minor faults) of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick, int(fields[7])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.whatif")
    parser.add_argument("--events", type=int, default=1_000_000, help="how many of the 1M events to load")
    parser.add_argument("--runs", type=int, default=2, help="what-ifs to ask, one after another")
    parser.add_argument("--bench-reads", action="store_true", help="make the benchmark's reads first")
    parser.add_argument("--database-url", default=os.environ.get("LEDGER_BENCH_POSTGRES_URL", DEFAULT_PG))
    parser.add_argument("--churn", type=float, default=0.0, help="corrections, as python -m bench --churn")
    args = parser.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    envelopes = list(itertools.islice(events(PARTICIPANTS, 1_000_000, churn=args.churn), args.events))
    try:
        with service(f"{args.database_url}?schema={schema}") as (base, process):
            print(f"batch_append_eps {load_batches(base, envelopes):,.0f}", flush=True)
            single_appends(base, PARTICIPANTS, clients=64, seconds=20)
            print(f"catch_up_read_ms {catch_up_read(base):,.0f}", flush=True)
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=600) as client:
                if args.bench_reads:
                    read_samples(client, PARTICIPANTS, len(envelopes), 300)
                else:
                    for i in range(300):  # cold statements
                        client.get(f"/v1/statements/p{1 + i * 7 % (PARTICIPANTS - 1):05d}/2026-{1 + i % 12:02d}")
                for run in range(args.runs):
                    user, kernel, faults = _process_times(process.pid)
                    started = time.perf_counter()
                    response = client.post("/v1/what-if", json=what_if_question(PARTICIPANTS))
                    seconds = time.perf_counter() - started
                    assert response.status_code == 200, response.text[:300]
                    user2, kernel2, faults2 = _process_times(process.pid)
                    print(f"whatif {run + 1}: {seconds:.2f} s; service user {user2 - user:.2f} s, "
                          f"kernel {kernel2 - kernel:.2f} s, minor faults {faults2 - faults:,}", flush=True)
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
