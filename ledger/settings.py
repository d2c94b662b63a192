"""Configuration from the environment (§1), read once by the composition root."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qs, unquote, urlparse

from psycopg import ProgrammingError
from psycopg.conninfo import make_conninfo
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Lines the statement engine's memo of computed results may hold (decision 84): a full memo took
#: about 700 MB of the process's memory as measured.
MEMO_LINES = 1_000_000


class Settings(BaseSettings):
    #: An empty variable is an unset one: compose files pass `${LEDGER_X:-}` through as "".
    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore", env_ignore_empty=True)

    database_url: str = "sqlite:///ledger.db"
    admin_token: str | None = None
    currency: str = "USD"
    #: Whether a rep's view of their team ranking shows colleagues' ids or pseudonyms.
    ranking_names: Literal["named", "anonymous"] = "named"
    #: Processes that compute a large what-if's rows (`replay.forked`): the service and one fewer
    #: forked workers, or, for one that would take `DETACH_WORTH_S` in the service alone, this many
    #: forked workers while the service lets go of the books (decision 138). Each worker may copy
    #: up to the books' size in memory while it runs. 1: none is forked.
    what_if_workers: int = Field(default=2, ge=1, le=64)
    #: Processes that share the statements of a large batch of `ledger project` or `ledger rebuild
    #: --view`, the worker's own included (`replay.forked`). 1: none is forked, and the rebuild
    #: keeps within its memory bound (a forked worker copies a third to half of it, decision 131).
    view_workers: int = Field(default=1, ge=1, le=64)
    #: Lines a process keeps of computed statements (`ledger serve` and `ledger project` each).
    memo_lines: int = Field(default=MEMO_LINES, ge=0)


class DatabaseUrlError(ValueError):
    """`LEDGER_DATABASE_URL` names no database this ledger can use."""


@dataclass(frozen=True)
class Database:
    """Where the event store lives, as the `eventsourcing` library wants it."""

    kind: Literal["sqlite", "postgres"]
    env: dict[str, str]
    schema: str = "public"
    #: libpq connection parameters from the URL's query (`sslmode`, `sslrootcert`, ...), given to
    #: every connection: the library's settings have no place for them (decision 121).
    options: Mapping[str, str] = field(default_factory=dict)


def parse_database_url(url: str) -> Database:
    """`sqlite:///relative.db`, `sqlite:////absolute.db` or `postgresql://user@host:port/db`.

    A `?schema=name` query on a PostgreSQL URL keeps the ledger's tables in
    that schema (created if missing), so several ledgers can share a database.
    Any other key of the query is a libpq connection parameter (`?sslmode=verify-full`),
    checked here: a misspelt one must not leave a connection less safe than asked.
    """
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise DatabaseUrlError("LEDGER_DATABASE_URL: a sqlite URL needs a file, e.g. sqlite:///ledger.db")
        return Database("sqlite", {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path})
    if parsed.scheme in ("postgresql", "postgres"):
        # A password with an unencoded / # ? @ or : breaks the URL, and the errors below would quote
        # a part of it: the port's (after a colon), or a query key's (after a question mark).
        broken = DatabaseUrlError(
            "LEDGER_DATABASE_URL is not a URL this ledger can read (in a password, percent-encode "
            "/ # ? @ : as %2F %23 %3F %40 %3A)"
        )
        try:
            port = parsed.port
        except ValueError:
            raise broken from None
        query = parse_qs(parsed.query, keep_blank_values=True)
        if any("@" in key or "/" in key for key in query):
            raise broken
        schema = query.pop("schema", [""])[-1] or "public"
        options = {key: values[-1] for key, values in query.items()}
        try:
            make_conninfo("", **options)
        except ProgrammingError as error:
            raise DatabaseUrlError(
                f"LEDGER_DATABASE_URL: {error} (the query takes schema and libpq's connection parameters)"
            ) from None
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": unquote(parsed.path.lstrip("/")) or "postgres",
            "POSTGRES_HOST": parsed.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(port or 5432),
            "POSTGRES_USER": unquote(parsed.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parsed.password or ""),
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_POOL_SIZE": "2",
            "POSTGRES_MAX_OVERFLOW": "14",
            "POSTGRES_LOCK_TIMEOUT": "10",
            "POSTGRES_PRE_PING": "y",
        }
        return Database("postgres", env, schema, options)
    raise DatabaseUrlError("LEDGER_DATABASE_URL must start with sqlite:/// or postgresql://")
