"""The event store, on the `eventsourcing` library's recorders.

The whole ledger is one event stream (one originator id) whose
`originator_version` is the ledger position. The library's unique key on
(originator_id, originator_version) is then the ledger's concurrency control:
two writers that both try to append position N cannot both succeed, so every
append was validated against the complete prefix of the log, across threads
and processes, on SQLite and PostgreSQL alike. Positions have no gaps.

Stored state is the record's JSON (public fields plus hash); topics are the
contract's type names under a versioned prefix, never Python class paths.
"""

from __future__ import annotations

import binascii
import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar
from uuid import UUID, uuid5

import orjson
from eventsourcing.persistence import (
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    InterfaceError,
    InternalError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
    StoredEvent,
)

from ledger.records import Record
from ledger.settings import Database

log = logging.getLogger("ledger.store")

LEDGER_STREAM = UUID("6c1b4f0e-7c0a-4f53-9d39-0d6a1e5b7a10")
#: A stored row of the log as the database gives it: (position, topic, state). Whole-log reads
#: take these rather than the library's `StoredEvent`, a frozen dataclass whose making cost 0.9 µs
#: a row, in the reading thread but under the interpreter's lock (decision 75).
StoredRow = tuple[int, str, bytes]
_TOKEN_NAMESPACE = UUID("0b6f5a55-4d8e-4b59-9a3c-6f5f0b2f7c21")
TOPIC_PREFIX = "ledger.v1:"
EVENTS_TABLE = "ledger_events"
DDL_LOCK = 0x4C454447
TOKENS_TABLE = "ledger_tokens"


class StoreUnavailable(Exception):
    """The database cannot be reached: the API answers 503 and nothing was stored."""


class PositionTaken(Exception):
    """Another writer appended first; the caller catches up and tries again."""


class StoreRefusesWrites(StoreUnavailable):
    """The database answers but will not store (read-only, disk full, no privilege): 503, nothing stored."""


def _stored_state(record: Record) -> bytes:
    return json.dumps(record.listing(), ensure_ascii=False).encode("utf-8")


_COPY_TYPES = ["uuid", "int8", "text", "bytea"]


def _row(record: Record) -> tuple[UUID, int, str, bytes]:
    """The library's columns for one record."""
    return LEDGER_STREAM, record.position, TOPIC_PREFIX + record.type, record.state or _stored_state(record)


_TEXT_ROWS_PER_WRITE = 64
_STREAM_TEXT = str(LEDGER_STREAM).encode("ascii")  # every row's originator id (`_row`), made once


def _text_row(record: Record) -> bytes:
    """`_row` as a line of COPY's text format. Only the state needs escaping (it is any JSON, so
    never a raw control character): ASCII in bytea's escape form, each backslash doubled for bytea
    and again for COPY, so that nothing in it reads as an escape or as the hex form's leading
    backslash (half the bytes of the hex form, escaped in less than half the time `hexlify`
    takes); anything else in the hex form, after an escaped backslash, as no text conversion by
    the server's encoding can then reach its bytes. The id is a UUID, the position digits, and
    topics the contract's type names."""
    _, position, topic, state = _row(record)
    if state.isascii():
        return b"%s\t%d\t%s\t%s\n" % (_STREAM_TEXT, position, topic.encode("ascii"), state.replace(b"\\", b"\\\\\\\\"))
    return b"%s\t%d\t%s\t\\\\x%s\n" % (_STREAM_TEXT, position, topic.encode("ascii"), binascii.hexlify(state))


def _unavailable(error: Exception) -> StoreUnavailable:
    return StoreUnavailable(f"the database is unreachable ({type(error).__name__})")


# The driver's reasons for refusing a write: SQLite result codes (prefixes) and PostgreSQL SQLSTATEs
# (read-only transaction, insufficient privilege, disk full).
_REFUSED_SQLITE = ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_PERM")
_REFUSED_POSTGRES = ("25006", "42501", "53100")
#: PostgreSQL's `lock_not_available`: another writer held the table (events or tokens) past the lock
#: timeout (`POSTGRES_LOCK_TIMEOUT`). The lock is a write's first statement: nothing of it was stored.
_LOCK_TIMEOUT = "55P03"


def _write_failed(error: Exception) -> StoreUnavailable:
    cause = error.__cause__
    if getattr(cause, "sqlstate", None) == _LOCK_TIMEOUT:
        return StoreUnavailable(
            "the ledger is busy: another writer held the table past the lock timeout; nothing was stored:"
            " try again"
        )
    sqlite_name = str(getattr(cause, "sqlite_errorname", "") or "")
    refused = (
        isinstance(error, (InternalError, ProgrammingError))
        or sqlite_name.startswith(_REFUSED_SQLITE)
        or getattr(cause, "sqlstate", None) in _REFUSED_POSTGRES
    )
    if not refused:
        # A connection lost during COMMIT leaves the outcome unknown: the answer says so (issue 4).
        return StoreUnavailable(
            f"the database is unreachable ({type(error).__name__}); if it was lost during the commit these"
            " events may be stored: send them again with the same event_ids (idempotent)"
        )
    reason = sqlite_name or type(cause if cause is not None else error).__name__
    return StoreRefusesWrites(f"the database refuses writes ({reason}); nothing was stored")


# While PostgreSQL is down, a request gets its 503 within a few seconds. The library retries a
# lost connection 10 times, each after waiting up to the pool timeout for a connection: about
# 50 s, holding the append lock (and, for reads on the event loop, the whole service).
_PG_RETRY_BUDGET = 2.0  # seconds of retries per store call
_PG_POOL_WAIT = 1.0  # the longest one attempt waits for a pooled connection
_PG_RECONNECT_GIVE_UP = 2.0  # the pool ends a reconnect backoff after this and reconnects on demand
_T = TypeVar("_T")


class EventStore:
    def __init__(self, database: Database) -> None:
        env = dict(database.env)
        env["CREATE_TABLE"] = "n"
        try:
            self._factory = InfrastructureFactory.construct(env)
            datastore = self._factory.datastore
            if database.kind == "postgres":
                datastore.pool.kwargs.update(database.options)  # before the pool's first connection
                from eventsourcing.postgres import PostgresApplicationRecorder

                self._events: ApplicationRecorder = PostgresApplicationRecorder(
                    datastore, events_table_name=EVENTS_TABLE
                )
                self._tokens: ApplicationRecorder = PostgresApplicationRecorder(
                    datastore, events_table_name=TOKENS_TABLE
                )
                # DDL from several processes starting at once collides in the catalog
                # ("tuple concurrently updated"): one process at a time creates tables.
                with datastore.get_connection() as conn:
                    conn.execute("SELECT pg_advisory_lock(%s)", (DDL_LOCK,))
                    try:
                        # Only a missing schema is created: PostgreSQL checks the database's CREATE
                        # privilege before it looks for the schema, and a role that may create tables
                        # in its schema (`public`, say) often has no such privilege.
                        if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                                        (database.schema,)).fetchone() is None:
                            conn.execute(f'CREATE SCHEMA "{database.schema}"')
                        conn.commit()
                        self._events.create_table()
                        self._tokens.create_table()
                    finally:
                        conn.execute("SELECT pg_advisory_unlock(%s)", (DDL_LOCK,))
                        conn.commit()
            else:
                from eventsourcing.sqlite import SQLiteApplicationRecorder

                self._events = SQLiteApplicationRecorder(datastore, events_table_name=EVENTS_TABLE)
                self._tokens = SQLiteApplicationRecorder(datastore, events_table_name=TOKENS_TABLE)
                self._events.create_table()
                self._tokens.create_table()
        except (OperationalError, InterfaceError) as error:
            raise _unavailable(error) from error
        except (ProgrammingError, InternalError) as error:  # no privilege to create what it needs
            cause = error.__cause__ if error.__cause__ is not None else error
            raise StoreRefusesWrites(
                f"the database refuses to set up the ledger's tables ({type(cause).__name__})") from cause
        self.kind = database.kind
        self.datastore = datastore
        self._read_ahead = _ReadAhead()
        self._write_sql: tuple[bytes, bytes, bytes] | None = None
        if database.kind == "postgres":
            datastore.pool.timeout = _PG_POOL_WAIT
            datastore.pool.reconnect_timeout = _PG_RECONNECT_GIVE_UP

    def _call(self, method: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """A store call; on PostgreSQL with lost-connection retries bounded in time, not in count."""
        if self.kind != "postgres":
            return method(*args, **kwargs)
        once = getattr(method, "__wrapped__", None)  # a library method without its own @retry
        recorder = getattr(method, "__self__", None)
        deadline = time.monotonic() + _PG_RETRY_BUDGET
        while True:
            try:
                result: _T = once(recorder, *args, **kwargs) if once and recorder else method(*args, **kwargs)
                return result
            except (OperationalError, InterfaceError):
                if time.monotonic() + 0.2 >= deadline:
                    raise
                time.sleep(0.2)

    # --- the ledger log ----------------------------------------------------------------

    def head(self) -> int:
        try:
            last = self._call(self._events.select_events, LEDGER_STREAM, desc=True, limit=1)
        except (OperationalError, InterfaceError) as error:
            raise _unavailable(error) from error
        return last[0].originator_version if last else 0

    def append(self, records: Sequence[Record]) -> None:
        """Store records in one transaction: all of them or none."""
        rows = [_row(record) for record in records]
        try:
            if self.kind == "postgres":
                self._call(self._copy_events, rows)
            else:
                self._call(self._events.insert_events, [StoredEvent(*row) for row in rows])
        except IntegrityError as error:
            raise PositionTaken(str(error)) from error
        except (OperationalError, InterfaceError, InternalError, ProgrammingError) as error:
            raise _write_failed(error) from error

    def _copy_events(self, rows: Sequence[tuple[UUID, int, str, bytes]]) -> None:
        """The library's insert, by COPY: same table, lock and notification, a fraction of the cost.

        The library sends a batch as one array of composite values, whose text
        encoding costs more per event than the rest of an append (decision 27).
        Its lock statements and NOTIFY go in one round trip, composed once
        (decision 46).
        """
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            begin, copy_sql, _ = self._write_statements(conn)
            curs.execute(begin)  # commit order = notification order, as the library keeps it
            with curs.copy(copy_sql) as copy:
                copy.set_types(_COPY_TYPES)
                for row in rows:  # the library's columns, without a `StoredEvent` per row (frozen: slow to make)
                    copy.write_row(row)

    def append_stream(self) -> AppendStream | None:
        """An append whose rows go to PostgreSQL as they are made (`AppendStream`); None on SQLite."""
        return AppendStream(self) if self.kind == "postgres" else None

    def _write_statements(self, conn: Any) -> tuple[bytes, bytes, bytes]:
        if self._write_sql is None:
            self._write_sql = self._compose_write_sql(conn)
        return self._write_sql

    def _compose_write_sql(self, conn: Any) -> tuple[bytes, bytes, bytes]:
        """(the library's table lock statements and its NOTIFY as one simple query, the COPY
        statement in binary format, and in text format)."""
        from psycopg.sql import SQL, Identifier

        recorder: Any = self._events
        notify = SQL("NOTIFY {0}").format(Identifier(recorder.channel_name))  # as `_notify_channel` sends it
        begin = b"; ".join([*(s.as_bytes(conn) for s in recorder.lock_table_statements), notify.as_bytes(conn)])
        columns = "(originator_id, originator_version, topic, state)"
        copy_sql = SQL("COPY {0}.{1} " + columns + " FROM STDIN").format(
            Identifier(self.datastore.schema), Identifier(EVENTS_TABLE)
        )
        text = copy_sql.as_bytes(conn)
        return begin, text + b" (FORMAT BINARY)", text

    def read_rows(
        self, after: int, upto: int | None = None, page: int = 10_000, ahead: bool = False
    ) -> Iterator[StoredRow]:
        """Stored rows in position order, unparsed (the chain verifier wants the raw bytes).

        Pages are ranges of positions, which have no gaps, not "the next N after":
        with a LIMIT the planner, misled by statistics older than a bulk load,
        sorted the whole rest of the log for every page (decision 33).

        `ahead`: for a caller that reads page after page (start-up, a rebuild, the chain's
        verification), the page after each full one is read meanwhile, on PostgreSQL, and used by
        the next page this or another such call asks for if it is that range (decision 69).
        """
        cursor = after
        while upto is None or cursor < upto:
            end = cursor + page if upto is None else min(cursor + page, upto)
            try:
                batch = self._page(cursor, end, ahead)
            except (OperationalError, InterfaceError) as error:
                raise _unavailable(error) from error
            yield from batch
            if len(batch) == end - cursor:
                cursor = end
                continue
            # A short page: the end of the log, a gap (rows deleted behind the ledger's back), or
            # rows another process stored while this one worked through the page (the head is read
            # after it). Read on from the last row returned, never from the page's end: that
            # skipped what the others had stored meanwhile (decision 110). An empty page ends the
            # read without asking for the head (most reads find nothing new).
            if not batch or self.head() <= end:
                return
            cursor = batch[-1][0]

    def _page(self, gt: int, lte: int, ahead: bool) -> list[StoredRow]:
        select = self._select_range if self.kind == "postgres" else self._select_range_sqlite
        batch = self._read_ahead.take(gt, lte) if ahead else None
        if batch is None:
            batch = self._call(select, LEDGER_STREAM, gt=gt, lte=lte)
        if ahead and self.kind == "postgres" and len(batch) == lte - gt:
            following = lte + (lte - gt)
            self._read_ahead.start(lte, following, lambda: self._call(select, LEDGER_STREAM, gt=lte, lte=following))
        return batch

    def _select_range_sqlite(self, stream: UUID, *, gt: int, lte: int) -> list[StoredRow]:
        """`_select_range` on SQLite: the library's `select_events` makes a `StoredEvent` per row."""
        statement = (
            f"SELECT originator_version, topic, state FROM {EVENTS_TABLE} WHERE originator_id = ?"  # noqa: S608
            " AND originator_version > ? AND originator_version <= ? ORDER BY originator_version"
        )
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(statement, (stream.hex, gt, lte))
            return [tuple(row) for row in curs.fetchall()]

    def _select_range(self, stream: UUID, *, gt: int, lte: int) -> list[StoredRow]:
        """The library's `select_events` on PostgreSQL, with tuple rows and binary transfer: the
        library makes a dict per row and moves `bytea` as hex text."""
        from psycopg.rows import tuple_row
        from psycopg.sql import SQL, Identifier

        query = SQL(
            "SELECT originator_version, topic, state FROM {0}.{1} WHERE originator_id = %s"
            " AND originator_version > %s AND originator_version <= %s ORDER BY originator_version"
        ).format(Identifier(self.datastore.schema), Identifier(EVENTS_TABLE))
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row, binary=True) as curs:
            curs.execute(query, (stream, gt, lte))
            rows: list[StoredRow] = curs.fetchall()
            return rows

    def read_positions(self, positions: Sequence[int], page: int = 10_000) -> Iterator[StoredEvent]:
        """Stored rows at these positions (ascending), in position order: one query per page of them."""
        for start in range(0, len(positions), page):
            chunk = list(positions[start : start + page])
            try:
                yield from self._call(self._select_positions, chunk)
            except (OperationalError, InterfaceError) as error:
                raise _unavailable(error) from error

    def _select_positions(self, positions: list[int]) -> list[StoredEvent]:
        if self.kind == "postgres":
            from psycopg.rows import tuple_row
            from psycopg.sql import SQL, Identifier

            query = SQL(
                "SELECT originator_version, topic, state FROM {0}.{1} WHERE originator_id = %s"
                " AND originator_version = ANY(%s) ORDER BY originator_version"
            ).format(Identifier(self.datastore.schema), Identifier(EVENTS_TABLE))
            with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row, binary=True) as curs:
                curs.execute(query, (LEDGER_STREAM, positions))
                rows = curs.fetchall()
        else:
            # One JSON array parameter, whatever the number of positions (SQLite limits parameters).
            statement = (
                f"SELECT originator_version, topic, state FROM {EVENTS_TABLE} WHERE originator_id = ?"  # noqa: S608
                " AND originator_version IN (SELECT value FROM json_each(?)) ORDER BY originator_version"
            )
            with self.datastore.transaction(commit=False) as curs:
                curs.execute(statement, (LEDGER_STREAM.hex, json.dumps(positions)))
                rows = [tuple(row) for row in curs.fetchall()]
        return [StoredEvent(LEDGER_STREAM, version, topic, state) for version, topic, state in rows]

    def read(self, after: int, upto: int | None = None, ahead: bool = False) -> Iterator[Record]:
        for position, _, state in self.read_rows(after, upto, ahead=ahead):
            yield record_from(position, state)

    # --- tokens ------------------------------------------------------------------------

    def append_token_event(self, token_id: str, version: int, payload: dict[str, Any]) -> None:
        stored = StoredEvent(
            originator_id=uuid5(_TOKEN_NAMESPACE, token_id),
            originator_version=version,
            topic=TOPIC_PREFIX + str(payload["type"]),
            state=json.dumps(payload).encode("utf-8"),
        )
        try:
            self._call(self._tokens.insert_events, [stored])
        except IntegrityError as error:
            raise PositionTaken(str(error)) from error
        except (OperationalError, InterfaceError, InternalError, ProgrammingError) as error:
            raise _write_failed(error) from error

    def read_token_events(self, after: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """At most `limit` token events after a notification id, with their ids (to resume from)."""
        try:
            found = self._call(self._tokens.select_notifications, after, limit, inclusive_of_start=False)
        except (OperationalError, InterfaceError) as error:
            raise _unavailable(error) from error
        return [(n.id, json.loads(n.state)) for n in found]

    def close(self) -> None:
        self._read_ahead.close()
        with contextlib.suppress(PersistenceError):  # closing a broken pool
            self._factory.close()


class _ReadAhead:
    """One page of the log read in a thread while the caller works on the page before it: the
    query then runs in the database while this process decodes and folds (start-up waited about
    a second for its queries at a million events)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: tuple[int, int, Future[list[StoredRow]]] | None = None
        self._executor: ThreadPoolExecutor | None = None

    def start(self, gt: int, lte: int, read: Callable[[], list[StoredRow]]) -> None:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-read-ahead")
            self._pending = (gt, lte, self._executor.submit(read))

    def take(self, gt: int, lte: int) -> list[StoredRow] | None:
        """The rows of positions (gt, lte] if they were read ahead and are all there; None otherwise,
        and the caller reads them itself. A short page is never used: it may have been read before
        the log grew, and the caller takes a short page for the end of the log."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None or pending[:2] != (gt, lte):
            return None
        try:
            batch = pending[2].result()
        except Exception:  # the caller's own read meets the error, with its handling
            return None
        return batch if len(batch) == lte - gt else None

    def close(self) -> None:
        with self._lock:
            executor, self._executor, self._pending = self._executor, None, None
        if executor is not None:  # a read under way ends with the pool, which the store closes next
            executor.shutdown(wait=False, cancel_futures=True)


def parse_state(state: bytes) -> dict[str, Any]:
    """A stored row's JSON: orjson where it can (three times faster); the standard library for
    anything it refuses."""
    try:
        body: dict[str, Any] = orjson.loads(state)
    except orjson.JSONDecodeError:
        body = json.loads(state)
    return body


def decode_record(stored: StoredEvent) -> Record:
    return record_from(stored.originator_version, stored.state)


def record_from(position: int, state: bytes) -> Record:
    return record_of(position, parse_state(state))


def record_of(position: int, body: dict[str, Any]) -> Record:
    """The record of a stored row's JSON (`parse_state`), at its position in the table."""
    return Record(
        position=position,
        event_id=body["event_id"],
        type=sys.intern(body["type"]),  # a few names, and a batch shares one time: one string each
        data=body["data"],
        recorded_at=sys.intern(body["recorded_at"]),
        hash=body["hash"],
    )


def _fell_back(what: str, error: Exception) -> None:
    """A line in the log, not a traceback: the usual append then meets the same fault and answers
    for it (a database that refuses writes gets its clear error, with nothing stored)."""
    log.warning("a streamed append %s (%s: %s); the batch is stored the usual way", what, type(error).__name__,
                str(error).splitlines()[0] if str(error) else "")


class _Abandoned(Exception):
    """Unwinds an `AppendStream` that will not be committed: its transaction rolls back."""


class AppendStream:
    """One append's transaction on PostgreSQL, whose rows are sent while the rest are being made.

    Rows are sent as they are sealed, so the server stores the first rows of a
    large batch while the rest are still being checked, on the other core
    (decision 63). They go in COPY's text format: in the binary format
    PostgreSQL holds up to 1,000 rows before it stores any, so a 1,000-event
    batch was all stored after its last row. The table lock is taken with the
    first rows sent, as `append` takes it, so commit order is still
    notification order; it is held while the rest of the group is checked.
    Nothing is stored before `commit`.
    """

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._stack = contextlib.ExitStack()
        self._copy: Any = None
        self._copying = contextlib.ExitStack()  # the COPY under way, ended alone by `drop_rows`
        self._cursor: Any = None
        self._copy_sql = b""
        self._lines: list[bytes] = []
        self.broken = False
        self._done = False

    def _open(self) -> None:
        """Take the lock and start the COPY, at the first rows to send: a group that turns out to
        hold nothing new (a batch sent again) never takes the lock."""
        store = self._store
        conn = self._stack.enter_context(store.datastore.get_connection())
        self._stack.enter_context(conn.transaction())
        cursor = self._stack.enter_context(conn.cursor())
        begin, _, copy_sql = store._write_statements(conn)
        cursor.execute(begin + b"; SAVEPOINT ledger_rows")  # where `drop_rows` returns to, locked
        self._cursor, self._copy_sql = cursor, copy_sql
        self._stack.enter_context(self._copying)  # ended before the transaction, as one context
        self._copy = self._copying.enter_context(cursor.copy(copy_sql))

    def write(self, record: Record) -> None:
        """Send one row (a few at a time). A failure (the connection lost, say) only marks the
        stream broken: `commit` then says so, and the caller stores the records the usual way."""
        self._lines.append(_text_row(record))
        if len(self._lines) >= _TEXT_ROWS_PER_WRITE:
            self._send()

    def drop_rows(self) -> None:
        """Forget the rows sent so far but keep the table lock: a batch of the group was rejected
        and its rows went out with the others', which are then written again. Giving the lock up
        instead let a writer in another process take it and store first, on every retry (with a
        steady writer there, until the group gave up: 503 for every batch of it)."""
        self._lines = []
        if self._copy is None or self.broken:
            return
        try:
            self._copying.close()  # the COPY ends: its rows are in the transaction, until the next line
            self._cursor.execute(b"ROLLBACK TO SAVEPOINT ledger_rows")
            self._copy = self._copying.enter_context(self._cursor.copy(self._copy_sql))
        except Exception as error:  # `append` meets whatever it was again, and answers for it
            _fell_back("could not drop its rows", error)
            self.broken = True

    def lock(self) -> None:
        """Take the table lock now, before any row: no other writer can then store a position until
        this commits, so what is read of the log from now on is all there is (`LedgerLog`'s retry)."""
        if self._copy is None and not self.broken:
            try:
                self._open()
            except Exception as error:  # whatever it was, `EventStore.append` meets it again and answers for it
                _fell_back("could not start", error)
                self.broken = True

    def _send(self) -> None:
        lines, self._lines = self._lines, []
        if not lines:
            return
        self.lock()
        if self.broken:
            return
        try:
            self._copy.write(b"".join(lines))
        except Exception as error:  # the same
            _fell_back("failed", error)
            self.broken = True

    def commit(self) -> bool:
        """Store every row written, in one transaction. True once stored; False if the stream
        broke or the commit failed for any reason but a taken position: the caller then stores the
        records with `EventStore.append`, which retries, and which finds the position taken if a
        commit whose answer was lost did store them (as its own retries would). Raises
        `PositionTaken` if another writer stored a position first: nothing of this was stored."""
        self._send()
        if self.broken or self._copy is None:  # nothing went out: no transaction to commit
            self.abort()
            return False
        self._done = True
        try:
            self._stack.close()
        except IntegrityError as error:
            raise PositionTaken(str(error)) from error
        except Exception as error:  # `append` meets it again and answers for it
            _fell_back("could not commit", error)
            return False
        return True

    def abort(self) -> None:
        """Roll back what was sent and give the connection back; once committed, nothing to do."""
        if not self._done:
            self._done = True
            with contextlib.suppress(Exception):
                self._stack.__exit__(_Abandoned, _Abandoned(), None)
