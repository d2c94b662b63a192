"""What an operator configures reaches the service as written, and what it cannot use is said in one line.

From a review of the deployment path: a PostgreSQL URL's `sslmode` was dropped without a word, an
empty variable from a compose file was taken literally, the demo refused any currency but USD, and
two processes starting on a new database raced to issue the generated admin token.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from typer.testing import CliRunner

from cli import app as cli_app
from cli import weak_admin_token
from ledger.settings import DatabaseUrlError, Settings, parse_database_url
from ledger.store import EventStore
from ledger.tokens import TokenRegistry
from replay.bootstrap import Services, build
from replay.demo import demo_events, load_demo
from replay.projector import projector_for
from tests.conftest import _postgres_or_skip
from tests.support import ADMIN_TOKEN

REPO = Path(__file__).resolve().parents[1]


def test_a_postgres_url_carries_libpq_parameters_beside_its_schema() -> None:
    database = parse_database_url(
        "postgresql://ledger@db.example:6432/books?schema=east&sslmode=verify-full&sslrootcert=root.crt"
    )
    assert database.schema == "east"
    assert dict(database.options) == {"sslmode": "verify-full", "sslrootcert": "root.crt"}
    assert database.env["POSTGRES_HOST"] == "db.example" and database.env["POSTGRES_PORT"] == "6432"
    assert dict(parse_database_url("postgresql://ledger@db/books").options) == {}


def test_a_misspelt_parameter_is_refused_by_name() -> None:
    """Ignoring it would leave the connection less safe than the operator asked (no TLS)."""
    with pytest.raises(DatabaseUrlError, match='"sslmod"'):
        parse_database_url("postgresql://ledger@db/books?sslmod=require")


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_every_connection_of_the_service_and_its_election_uses_the_urls_parameters(
    database_url: str, request: pytest.FixtureRequest
) -> None:
    url = f"{database_url}&application_name=ledger-config-test&options=-c%20work_mem%3D7MB"
    services = build(Settings(database_url=url, admin_token=ADMIN_TOKEN))
    request.addfinalizer(services.close)
    with services.store.datastore.get_connection() as conn:
        shown = {name: conn.execute(f"SHOW {name}").fetchone()[name] for name in ("application_name", "work_mem")}
    assert shown == {"application_name": "ledger-config-test", "work_mem": "7MB"}
    election = projector_for(services.store, parse_database_url(url)).election
    assert election.try_lead()
    try:
        session: Any = election._conn  # type: ignore[attr-defined]
        seen = {name: session.execute(f"SHOW {name}").fetchone()[0]
                for name in ("application_name", "work_mem", "statement_timeout")}
    finally:
        election.resign()
    # The URL's server settings, and the election's own liveness settings beside them (decision 117).
    assert seen == {"application_name": "ledger-config-test", "work_mem": "7MB", "statement_timeout": "5s"}


def test_an_empty_variable_is_an_unset_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A compose file's `${LEDGER_CURRENCY:-}` passes an empty string, meaning "the default"."""
    monkeypatch.setenv("LEDGER_CURRENCY", "")
    monkeypatch.setenv("LEDGER_DATABASE_URL", "")
    monkeypatch.setenv("LEDGER_MEMO_LINES", "")
    settings = Settings()
    assert (settings.currency, settings.database_url, settings.memo_lines) == ("USD", "sqlite:///ledger.db", 1_000_000)


def test_the_demo_loads_into_a_ledger_of_any_currency(make_services: Callable[..., Services]) -> None:
    services = make_services(currency="EUR")
    count = load_demo(services.log)
    assert count == len(demo_events()) and services.log.head == count
    booked = [r for r in services.store.read(0) if r.type == "DealBooked"]
    assert booked and {r.data["currency"] for r in booked} == {"EUR"}


def test_two_processes_starting_on_a_new_database_issue_one_admin_token(database_url: str) -> None:
    """Both look, find no generated admin token, and issue one: the second must start all the same."""
    first, second = EventStore(parse_database_url(database_url)), EventStore(parse_database_url(database_url))
    try:
        one, other = TokenRegistry(first), TokenRegistry(second)
        real, looks = other._refresh, []

        def looked_before_the_first_issued() -> None:
            looks.append(1)
            if len(looks) > 1:
                real()

        other._refresh = looked_before_the_first_issued  # type: ignore[method-assign]
        token = one.ensure_bootstrap_admin()
        assert token is not None
        assert other.ensure_bootstrap_admin() is None
        principal = other.authenticate(token, datetime.now(UTC))
        assert principal is not None and principal.role == "admin"
    finally:
        first.close()
        second.close()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=REPO, env={**os.environ, **env},
        capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"LEDGER_DATABASE_URL": "postgresql://ledger@127.0.0.1:5432/books?sslmod=require"}, '"sslmod"'),
        ({"LEDGER_DATABASE_URL": "mysql://ledger@127.0.0.1/books"}, "must start with sqlite:/// or postgresql://"),
        ({"LEDGER_WHAT_IF_WORKERS": "0"}, "what_if_workers"),
        ({"LEDGER_VIEW_WORKERS": "0"}, "view_workers"),
    ],
)
def test_a_configuration_the_commands_cannot_use_is_one_line_and_exit_2(
    env: dict[str, str], said: str, tmp_path: Path
) -> None:
    result = _cli({"LEDGER_DATABASE_URL": f"sqlite:///{tmp_path}/ledger.db", **env}, "verify")
    assert result.returncode == 2, result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: the configuration:") and result.stderr.count("\n") == 1


def test_a_database_that_cannot_be_opened_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = _cli({"LEDGER_DATABASE_URL": f"sqlite:///{tmp_path}/no-such-directory/ledger.db"}, "verify")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: the database is unreachable") and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert "unable to open database file" in result.stderr


def test_a_port_out_of_range_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--port", "70000"])
    assert result.exit_code == 2 and "65535" in result.output


@pytest.mark.parametrize("url", [
    "postgresql://ledger:s3cr/3t@db:5432/books",  # the port would be "s3cr"
    "postgresql://ledger:s3?cr3t@db:5432/books",  # a query key would be "cr3t@db:5432/books"
    "postgresql://ledger:?s3cr3t@db:5432/books",
])
def test_a_password_that_breaks_the_url_is_not_quoted_back(url: str) -> None:
    with pytest.raises(DatabaseUrlError) as raised:
        parse_database_url(url)
    assert "s3" not in str(raised.value) and "cr3t" not in str(raised.value)
    assert "percent-encode" in str(raised.value)


def test_an_empty_schema_is_the_default_one() -> None:
    assert parse_database_url("postgresql://ledger@db/books?schema=").schema == "public"


def test_the_configured_admin_token_is_compared_without_surrounding_whitespace(database_url: str) -> None:
    """A secret file's trailing newline would otherwise leave no admin: the variable is set, so
    none is generated, and a presented token is stripped."""
    store = EventStore(parse_database_url(database_url))
    try:
        registry = TokenRegistry(store, "  a-long-enough-admin-secret-0123456789\n")
        principal = registry.authenticate("a-long-enough-admin-secret-0123456789", datetime.now(UTC))
        assert principal is not None and principal.role == "admin"
        assert registry.ensure_bootstrap_admin() is None
    finally:
        store.close()


def test_a_short_admin_token_is_warned_about() -> None:
    assert weak_admin_token(Settings(admin_token="admin")) is not None
    assert "5 characters" in str(weak_admin_token(Settings(admin_token=" admin\n")))
    assert weak_admin_token(Settings(admin_token="x" * 32)) is None
    assert weak_admin_token(Settings(admin_token=None)) is None


@pytest.fixture
def postgres_role() -> Iterator[Callable[[bool], str]]:
    """A login role of its own with a schema of its own, owned by the server's user: `make(True)`
    may create tables in it, `make(False)` only use it. Returns the role's database URL."""
    base = _postgres_or_skip()
    made: list[tuple[str, str]] = []

    def make(may_create: bool) -> str:
        role, schema = f"t_role_{uuid.uuid4().hex[:8]}", f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'ledger-test'")
            made.append((role, schema))
            conn.execute(f'CREATE SCHEMA "{schema}"')
            conn.execute(f'GRANT USAGE{", CREATE" if may_create else ""} ON SCHEMA "{schema}" TO {role}')
        parts = urlsplit(base)
        netloc = f"{role}:ledger-test@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc, query=f"schema={schema}"))

    yield make
    with psycopg.connect(base, autocommit=True) as conn:
        for role, schema in made:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.execute(f"DROP ROLE IF EXISTS {role}")


@pytest.mark.postgres
def test_a_role_that_may_create_tables_only_in_its_schema_starts(postgres_role: Callable[[bool], str]) -> None:
    """The usual least privilege since PostgreSQL 15: no CREATE on the database. Creating the schema
    when it exists asked for that privilege, and every command stopped with a traceback."""
    url = postgres_role(True)
    services = build(Settings(database_url=url, admin_token=ADMIN_TOKEN))
    try:
        services.log.append([{"event_id": "reg", "type": "ParticipantRegistered", "data": {
            "participant_id": "r1", "name": "R", "team_id": "t", "start_date": "2020-01-01"}}])
        assert services.store.head() == 1
    finally:
        services.close()


@pytest.mark.postgres
def test_a_role_that_may_not_create_the_tables_is_told_in_one_line(postgres_role: Callable[[bool], str]) -> None:
    result = _cli({"LEDGER_DATABASE_URL": postgres_role(False)}, "verify")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: the database refuses to set up the ledger's tables "
                                    "(InsufficientPrivilege): permission denied for schema")
    assert result.stderr.count("\n") == 1 and "ledger-test" not in result.stderr
