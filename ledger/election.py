"""Who runs the projection: one active `ledger project` worker, any number of standbys.

On PostgreSQL the leader holds a session-level advisory lock on a connection
of its own; if the process dies or its connection drops, the server releases
the lock and a standby's next try wins it. On SQLite the same role is played
by an exclusive `flock` on a file beside the database, which the kernel
releases when the process dies. Leadership only decides who works: the view's
tracked position is still checked in every write (`ledger.views`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import IO, Any, Protocol

from ledger.settings import Database

log = logging.getLogger("ledger.election")


class Election(Protocol):
    def try_lead(self) -> bool:
        """Become the leader if no one is; True while this worker leads."""

    def leading(self) -> bool:
        """Whether this worker still holds the leadership (checked before each batch)."""

    @property
    def failure(self) -> str | None:
        """Why the last `try_lead` could not stand at all (the server unreachable), not having lost."""

    def resign(self) -> None: ...


def lock_key(schema: str) -> int:
    """A stable signed 64-bit advisory-lock key per ledger schema."""
    digest = hashlib.sha256(f"ledger-projector:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


#: A leader whose connection went half-open must notice within seconds (the client's TCP keepalives,
#: TCP user timeout and statement timeout), and so must the server, which then ends the session and
#: frees the lock for a standby: the same keepalives and timeout for the server's end of the session,
#: set for it alone (`options`). The server's own defaults are the system's, about two hours on
#: Linux, during which a leader whose host died or was cut off kept the lock and no standby could
#: take over (decision 117). `tcp_user_timeout` needs PostgreSQL 12 or later.
_LIVENESS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
    "options": "-c statement_timeout=5000 -c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2"
    " -c tcp_keepalives_count=3 -c tcp_user_timeout=10000",
}


class PostgresElection:
    def __init__(self, connect_kwargs: dict[str, Any], schema: str) -> None:
        kwargs = {k: v for k, v in connect_kwargs.items() if k != "row_factory"}
        # The URL's own `options` (server settings) come first: the liveness settings win.
        options = " ".join(o for o in (kwargs.get("options"), _LIVENESS["options"]) if o)
        self._kwargs = {**kwargs, **_LIVENESS, "options": options}
        self._key = lock_key(schema)
        #: The election's own session: the leader's, holding the lock, or a standby's, kept to try
        #: again on (a new session every `--poll` seconds cost the server a process start each).
        self._conn: Any = None
        self._leads = False
        #: The last failure to reach the server for the election, logged once until it changes.
        self._failure: str | None = None

    def try_lead(self) -> bool:
        import psycopg

        if self._leads and self.leading():
            return True
        try:
            if self._conn is None:
                self._conn = psycopg.connect(**self._kwargs, autocommit=True)
            won = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
        except psycopg.Error as error:
            self.resign()  # a session that failed is not tried again: the next try starts a new one
            self._failed(error)
            return False
        if self._failure is not None:
            log.warning("the election reaches the database again")
            self._failure = None
        self._leads = won is not None and bool(won[0])
        return self._leads

    def _failed(self, error: Exception) -> None:
        """A worker that cannot reach the server for the election stays a standby: say why, once per
        cause, or every worker waits as a standby with the view standing still and nothing said
        (a pooler that refuses the connection's `options`, a server out of connections)."""
        failure = f"{type(error).__name__}: {error}".strip()
        if failure != self._failure:
            log.warning("this worker cannot stand for election, and waits as a standby: %s", failure)
            self._failure = failure

    @property
    def failure(self) -> str | None:
        """Why the last try could not reach the server for the election; None when it could."""
        return self._failure

    def leading(self) -> bool:
        import psycopg

        if not self._leads:
            return False
        try:  # a session-level advisory lock lasts as long as its session: a live session still holds it
            self._conn.execute("SELECT 1")
        except psycopg.Error:
            self.resign()
            return False
        return True

    def resign(self) -> None:
        """Leave the election, leader or standby: closing the session releases its advisory locks."""
        self._leads = False
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


class FileElection:
    def __init__(self, path: str) -> None:
        self._path = path
        self._file: IO[bytes] | None = None

    def try_lead(self) -> bool:
        import fcntl

        if self._file is not None:
            return True
        handle = open(self._path, "ab")  # noqa: SIM115 - held open for as long as we lead
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    @property
    def failure(self) -> str | None:
        return None  # the lock file is opened, or the lock is held by a rival

    def leading(self) -> bool:
        return self._file is not None

    def resign(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the lock
            self._file = None


def election_for(database: Database, connect_kwargs: dict[str, Any] | None = None) -> Election:
    if database.kind == "postgres":
        assert connect_kwargs is not None
        return PostgresElection(connect_kwargs, database.schema)
    path = os.path.abspath(database.env["SQLITE_DBNAME"])
    return FileElection(path + ".projector.lock")
