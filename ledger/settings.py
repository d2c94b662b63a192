"""Configuration from the environment (§1), read once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, unquote, urlparse

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Lines the statement engine's memo of computed results may hold (decision 84): a full memo took
#: about 700 MB of the process's memory as measured.
MEMO_LINES = 1_000_000


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore")

    database_url: str = "sqlite:///ledger.db"
    admin_token: str | None = None
    currency: str = "USD"
    #: Whether a rep's view of their team ranking shows colleagues' ids or pseudonyms.
    ranking_names: Literal["named", "anonymous"] = "named"
    #: Processes that share a what-if's rows, the service's own included (`replay.forked`): each
    #: other one may copy up to the books' size in memory while it runs. 1: none is forked.
    what_if_workers: int = Field(default=2, ge=1, le=64)
    #: Lines a process keeps of computed statements (`ledger serve` and `ledger project` each).
    memo_lines: int = Field(default=MEMO_LINES, ge=0)


@dataclass(frozen=True)
class Database:
    """Where the event store lives, as the `eventsourcing` library wants it."""

    kind: Literal["sqlite", "postgres"]
    env: dict[str, str]
    schema: str = "public"


def parse_database_url(url: str) -> Database:
    """`sqlite:///relative.db`, `sqlite:////absolute.db` or `postgresql://user@host:port/db`.

    A `?schema=name` query on a PostgreSQL URL keeps the ledger's tables in
    that schema (created if missing), so several ledgers can share a database.
    """
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise ValueError("LEDGER_DATABASE_URL: a sqlite URL needs a file, e.g. sqlite:///ledger.db")
        return Database("sqlite", {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path})
    if parsed.scheme in ("postgresql", "postgres"):
        query = parse_qs(parsed.query)
        schema = query.get("schema", ["public"])[0]
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": unquote(parsed.path.lstrip("/")) or "postgres",
            "POSTGRES_HOST": parsed.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parsed.port or 5432),
            "POSTGRES_USER": unquote(parsed.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parsed.password or ""),
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_POOL_SIZE": "2",
            "POSTGRES_MAX_OVERFLOW": "14",
            "POSTGRES_LOCK_TIMEOUT": "10",
            "POSTGRES_PRE_PING": "y",
        }
        return Database("postgres", env, schema)
    raise ValueError("LEDGER_DATABASE_URL must start with sqlite:/// or postgresql://")
