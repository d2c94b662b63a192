"""ASGI entry point for several uvicorn workers: each builds its own services from the environment.

A worker is a process of its own, started afresh: the logging `ledger serve` set up in its parent
is not there, so each sets it up again, or its one log line per request would go nowhere."""

from __future__ import annotations

from api.app import create_app
from api.logs import configure_logging
from ledger.settings import Settings
from replay.bootstrap import build

configure_logging()
app = create_app(build(Settings()))
