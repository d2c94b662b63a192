"""The materialized statement view: SQL tables kept by `ledger project`, for reporting and BI.

One row per participant and period that has anything on its statement (a
target, credit or a line), with the figures the API shows at the tracked
position. Rows (and the status of rows of periods closed since: decision 130),
the tracked position and a log of applied batches are written
in one transaction, on the `eventsourcing` library's tracking recorders. A
batch is recorded only if it starts right after the tracked position, so two
workers that both believe they lead cannot apply one event twice or skip one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from eventsourcing.persistence import Tracking

from ledger.store import DDL_LOCK, EventStore
from ledger.view_rows import CLOSED, Batch, ViewChanges, ViewRow

VIEW = "statement_view"
TRACKING_TABLE = "ledger_view_tracking"
ROWS_TABLE = "ledger_view_statements"
BATCHES_TABLE = "ledger_view_batches"


class ViewMoved(Exception):
    """The tracked position is not where this worker expected: another worker wrote meanwhile."""


class StatementView(Protocol):
    def position(self) -> int: ...

    def record(self, changes: ViewChanges, first: int, last: int, worker: str) -> None: ...

    def rows(self) -> list[ViewRow]: ...

    def batches(self) -> list[Batch]: ...

    def reset(self) -> None:
        """Empty the view and its tracking: the next batch starts at position 1."""


_COLUMNS = "participant_id, period, status, target, credited, attainment, total, line_count, as_of_position"


def _row(values: Sequence[Any]) -> ViewRow:
    def money(value: Any) -> Decimal | None:
        return None if value is None else Decimal(str(value))

    credited, total = money(values[4]), money(values[6])
    assert credited is not None and total is not None
    return ViewRow(values[0], values[1], values[2], money(values[3]), credited, money(values[5]), total, values[7])


def _params(row: ViewRow, position: int, text: bool) -> tuple[Any, ...]:
    """SQLite has no exact decimal type: money goes there as text, never through a float."""

    def money(value: Decimal | None) -> Any:
        return None if value is None else (str(value) if text else value)

    return (
        row.participant_id,
        row.period,
        row.status,
        money(row.target),
        money(row.credited),
        money(row.attainment),
        money(row.total),
        row.line_count,
        position,
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def open_view(store: EventStore) -> StatementView:
    """The view on the same database (and pool) as the store; tables are created if missing."""
    if store.kind == "postgres":
        view: StatementView = _postgres_view(store)
    else:
        view = _sqlite_view(store)
    return view


def _postgres_view(store: EventStore) -> StatementView:
    from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
    from psycopg.sql import SQL, Identifier

    class PostgresStatementView(PostgresTrackingRecorder):  # type: ignore[misc]  # the library is not followed
        def __init__(self, datastore: PostgresDatastore) -> None:
            super().__init__(datastore, tracking_table_name=TRACKING_TABLE)
            schema = Identifier(datastore.schema)
            self.rows_table = SQL("{0}.{1}").format(schema, Identifier(ROWS_TABLE))
            self.batches_table = SQL("{0}.{1}").format(schema, Identifier(BATCHES_TABLE))
            self.tracking_table = SQL("{0}.{1}").format(schema, Identifier(TRACKING_TABLE))
            self.sql_create_statements += [
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} (participant_id text NOT NULL, period text NOT NULL, "
                    "status text NOT NULL, target numeric, credited numeric NOT NULL, attainment numeric, "
                    "total numeric NOT NULL, line_count integer NOT NULL, as_of_position bigint NOT NULL, "
                    "PRIMARY KEY (participant_id, period))"
                ).format(self.rows_table),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} (first_position bigint PRIMARY KEY, "
                    "last_position bigint NOT NULL, worker text NOT NULL, recorded_at text NOT NULL)"
                ).format(self.batches_table),
            ]

        def position(self) -> int:
            return self.max_tracking_id(VIEW) or 0

        def record(self, changes: ViewChanges, first: int, last: int, worker: str) -> None:
            with self.datastore.transaction(commit=True) as curs:
                curs.execute(SQL("LOCK TABLE {0} IN EXCLUSIVE MODE").format(self.batches_table))
                curs.execute(
                    SQL("SELECT notification_id FROM {0} WHERE application_name = %s").format(self.tracking_table),
                    (VIEW,),
                )
                found = curs.fetchone()
                tracked = int(found["notification_id"]) if found else 0
                if tracked != first - 1:
                    raise ViewMoved(f"the view is at position {tracked}, not {first - 1}")
                if changes.closed:  # first: the rows rewritten below get their own figures
                    curs.executemany(
                        SQL("UPDATE {0} SET status = %s, as_of_position = %s WHERE period = %s").format(
                            self.rows_table),
                        [(CLOSED, last, period) for period in changes.closed],
                    )
                if changes.deletes:
                    curs.executemany(
                        SQL("DELETE FROM {0} WHERE participant_id = %s AND period = %s").format(self.rows_table),
                        list(changes.deletes),
                    )
                if changes.upserts:
                    curs.executemany(
                        SQL(
                            "INSERT INTO {0} (" + _COLUMNS + ") VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "  # noqa: S608 - constant table names
                            "ON CONFLICT (participant_id, period) DO UPDATE SET status = EXCLUDED.status, "
                            "target = EXCLUDED.target, credited = EXCLUDED.credited, "
                            "attainment = EXCLUDED.attainment, total = EXCLUDED.total, "
                            "line_count = EXCLUDED.line_count, as_of_position = EXCLUDED.as_of_position"
                        ).format(self.rows_table),
                        [_params(row, last, text=False) for row in changes.upserts],
                    )
                curs.execute(
                    SQL("INSERT INTO {0} VALUES (%s, %s, %s, %s)").format(self.batches_table),
                    (first, last, worker, _now()),
                )
                self._insert_tracking(curs, Tracking(VIEW, last))

        def reset(self) -> None:
            with self.datastore.transaction(commit=True) as curs:
                curs.execute(SQL("LOCK TABLE {0} IN EXCLUSIVE MODE").format(self.batches_table))
                curs.execute(SQL("DELETE FROM {0}").format(self.rows_table))
                curs.execute(SQL("DELETE FROM {0}").format(self.batches_table))
                curs.execute(
                    SQL("DELETE FROM {0} WHERE application_name = %s").format(self.tracking_table), (VIEW,)
                )

        def rows(self) -> list[ViewRow]:
            with self.datastore.transaction(commit=False) as curs:
                curs.execute(SQL("SELECT " + _COLUMNS + " FROM {0} ORDER BY 1, 2").format(self.rows_table))  # noqa: S608 - constant table names
                return [_row(list(found.values())) for found in curs.fetchall()]

        def batches(self) -> list[Batch]:
            with self.datastore.transaction(commit=False) as curs:
                curs.execute(SQL("SELECT first_position, last_position, worker FROM {0} ORDER BY 1").format(
                    self.batches_table))
                return [Batch(r["first_position"], r["last_position"], r["worker"]) for r in curs.fetchall()]

    datastore = store.datastore
    assert isinstance(datastore, PostgresDatastore)
    recorder = PostgresStatementView(datastore)
    with datastore.get_connection() as conn:  # one process at a time runs DDL (see the event store)
        conn.execute("SELECT pg_advisory_lock(%s)", (DDL_LOCK,))
        try:
            recorder.create_table()
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (DDL_LOCK,))
            conn.commit()
    return recorder


def _sqlite_view(store: EventStore) -> StatementView:
    from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

    class SQLiteStatementView(SQLiteTrackingRecorder):  # type: ignore[misc]  # the library is not followed
        def construct_create_table_statements(self) -> list[str]:
            return [
                *super().construct_create_table_statements(),
                f"CREATE TABLE IF NOT EXISTS {ROWS_TABLE} (participant_id TEXT NOT NULL, period TEXT NOT NULL, "
                "status TEXT NOT NULL, target TEXT, credited TEXT NOT NULL, attainment TEXT, total TEXT NOT NULL, "
                "line_count INTEGER NOT NULL, as_of_position INTEGER NOT NULL, PRIMARY KEY (participant_id, period))",
                f"CREATE TABLE IF NOT EXISTS {BATCHES_TABLE} (first_position INTEGER PRIMARY KEY, "
                "last_position INTEGER NOT NULL, worker TEXT NOT NULL, recorded_at TEXT NOT NULL)",
            ]

        def position(self) -> int:
            return self.max_tracking_id(VIEW) or 0

        def record(self, changes: ViewChanges, first: int, last: int, worker: str) -> None:
            with self.datastore.transaction(commit=True) as curs:  # the writer's lock: one transaction at a time
                # Take the writer's lock before reading: a transaction that read first and wrote after
                # an append committed meanwhile failed at once (SQLite's stale snapshot, which waits
                # for nothing), and the projector refolded the whole log to try again (decision 117).
                curs.execute(
                    "UPDATE tracking SET notification_id = notification_id WHERE application_name = ?", (VIEW,)
                )
                curs.execute("SELECT notification_id FROM tracking WHERE application_name = ?", (VIEW,))
                found = curs.fetchone()
                tracked = int(found[0]) if found else 0
                if tracked != first - 1:
                    raise ViewMoved(f"the view is at position {tracked}, not {first - 1}")
                curs.executemany(  # first: the rows rewritten below get their own figures
                    f"UPDATE {ROWS_TABLE} SET status = ?, as_of_position = ? WHERE period = ?",  # noqa: S608 - constant table names
                    [(CLOSED, last, period) for period in changes.closed],
                )
                curs.executemany(
                    f"DELETE FROM {ROWS_TABLE} WHERE participant_id = ? AND period = ?",  # noqa: S608 - constant table names
                    list(changes.deletes),
                )
                curs.executemany(
                    f"INSERT OR REPLACE INTO {ROWS_TABLE} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 - constant table names
                    [_params(row, last, text=True) for row in changes.upserts],
                )
                curs.execute(f"INSERT INTO {BATCHES_TABLE} VALUES (?, ?, ?, ?)", (first, last, worker, _now()))  # noqa: S608 - constant table names
                self._insert_tracking(curs, Tracking(VIEW, last))

        def reset(self) -> None:
            with self.datastore.transaction(commit=True) as curs:
                for table in (ROWS_TABLE, BATCHES_TABLE):
                    curs.execute(f"DELETE FROM {table}")  # noqa: S608 - constant table names
                curs.execute("DELETE FROM tracking WHERE application_name = ?", (VIEW,))

        def rows(self) -> list[ViewRow]:
            with self.datastore.transaction(commit=False) as curs:
                curs.execute(f"SELECT {_COLUMNS} FROM {ROWS_TABLE} ORDER BY 1, 2")  # noqa: S608 - constant table names
                return [_row(tuple(found)) for found in curs.fetchall()]

        def batches(self) -> list[Batch]:
            with self.datastore.transaction(commit=False) as curs:
                curs.execute(f"SELECT first_position, last_position, worker FROM {BATCHES_TABLE} ORDER BY 1")  # noqa: S608 - constant table names
                return [Batch(r[0], r[1], r[2]) for r in curs.fetchall()]

    datastore = store.datastore
    assert isinstance(datastore, SQLiteDatastore)
    recorder = SQLiteStatementView(datastore)
    recorder.create_table()
    return recorder
