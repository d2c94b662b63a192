"""Fixtures: every ledger test runs on the embedded SQLite store and on PostgreSQL.

PostgreSQL tests read their server from LEDGER_TEST_POSTGRES_URL and each gets
a schema of its own, dropped afterwards. When LEDGER_REQUIRE_POSTGRES=1 (as in
CI) a missing server fails the run instead of skipping those tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.settings import Settings
from replay.bootstrap import Services, build
from tests.support import ADMIN_TOKEN, Api

POSTGRES_URL = os.environ.get("LEDGER_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("LEDGER_REQUIRE_POSTGRES") == "1"


def _postgres_or_skip() -> str:
    if POSTGRES_URL:
        return POSTGRES_URL
    if REQUIRE_POSTGRES:
        pytest.fail("LEDGER_REQUIRE_POSTGRES=1 but LEDGER_TEST_POSTGRES_URL is not set")
    pytest.skip("set LEDGER_TEST_POSTGRES_URL to run the PostgreSQL tests")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    """A fresh, empty database for one test, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ledger.db"
        return
    base = _postgres_or_skip()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield f"{base}?schema={schema}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '30s'")  # a lock a test left behind fails it, not the run
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def make_services(database_url: str) -> Iterator[Callable[..., Services]]:
    """Build services on the test database (several times, to simulate restarts or processes)."""
    built: list[Services] = []

    def make(**overrides: object) -> Services:
        settings = Settings(database_url=database_url, admin_token=ADMIN_TOKEN, **overrides)  # type: ignore[arg-type]
        services = build(settings)
        built.append(services)
        return services

    yield make
    for services in built:
        services.close()


@pytest.fixture
def api(make_services: Callable[..., Services]) -> Iterator[Api]:
    services = make_services()
    with TestClient(create_app(services)) as client:
        yield Api(client, services)
