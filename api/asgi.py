"""ASGI entry point for several uvicorn workers: each builds its own services from the environment."""

from __future__ import annotations

from api.app import create_app
from ledger.settings import Settings
from replay.bootstrap import build

app = create_app(build(Settings()))
