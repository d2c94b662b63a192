"""`python -m bench.batches [--events N] [--library]`: the benchmark's batch load alone.

Loads the first N of the benchmark's events (default 300,000 of the 1M-event, 10,000-participant
ledger) through `POST /v1/events/batch` into a fresh PostgreSQL schema, as `python -m bench` does
first, and prints events/s; with `--library`, the library's baseline in the same run. For
comparing two versions of the append path in the same hour (run each from its own checkout, in
turn): a full benchmark takes minutes and this part of it seconds.
"""

from __future__ import annotations

import argparse
import itertools
import os
import uuid

import psycopg

from bench.__main__ import DEFAULT_PG, library_batches, load_batches, server
from bench.generate import events


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.batches")
    parser.add_argument("--events", type=int, default=300_000, help="how many of the 1M events to load")
    parser.add_argument("--library", action="store_true", help="also the library's 100-per-save baseline")
    parser.add_argument("--database-url", default=os.environ.get("LEDGER_BENCH_POSTGRES_URL", DEFAULT_PG))
    args = parser.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    url = f"{args.database_url}?schema={schema}"
    envelopes = list(itertools.islice(events(10_000, 1_000_000), args.events))
    try:
        with server(url) as base:
            print(f"batch_append_eps {load_batches(base, envelopes):,.0f}", flush=True)
        if args.library:
            print(f"lib_batch_eps {library_batches(url, 100_000):,.0f}")
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
