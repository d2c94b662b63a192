"""The `ledger` command: serve, demo, verify, replay, export."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from ledger.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable

    import uvicorn

    from ledger.store import EventStore
    from replay.bootstrap import Services
    from replay.projector import Projector

#: Events per transaction of `ledger rebuild --view`: each batch recomputes every statement it
#: touches, so fewer, larger batches do less work (1M events: 117 s in batches of 50,000, 63 s of
#: 250,000, 49 s in one, decision 124; 45.6-47.3 s of 250,000 and 41.5-42.1 s of 500,000 on a
#: faster hour, decision 133), and an interrupted rebuild loses at most one batch.
VIEW_REBUILD_BATCH = 500_000

# Never locals in a traceback: they would print the settings, the admin token among them.
app = typer.Typer(help="Performance Ledger: an event-sourced ledger for incentive compensation.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
export_app = typer.Typer(help="Export files for other systems.", no_args_is_help=True)
app.add_typer(export_app, name="export")


def _services() -> Services:
    from replay.bootstrap import build

    return build(Settings())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8000,
    demo: Annotated[bool, typer.Option("--demo", help="load the demo ledger first if the ledger is empty")] = False,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes")] = 1,
) -> None:
    """Start the HTTP service (stops cleanly on SIGTERM)."""
    import uvicorn

    from api.app import create_app
    from api.logs import configure_logging

    configure_logging()
    services = _services()
    if (warning := weak_admin_token(services.settings)) is not None:
        typer.echo(warning, err=True)
    token = services.tokens.ensure_bootstrap_admin()
    if token is not None:
        typer.echo(f"Generated the admin token (shown once, only its hash is stored):\n  {token}\n", err=True)
    if demo and services.log.head == 0:
        from replay.demo import load_demo

        count = load_demo(services.log)
        typer.echo(f"Loaded the demo ledger: {count} events.", err=True)
    if workers > 1:
        services.close()
        uvicorn.run("api.asgi:app", host=host, port=port, workers=workers, log_level="info", log_config=None)
        return
    server = _clean_exit_server_class()(uvicorn.Config(create_app(services), host=host, port=port, log_config=None))
    server.run()
    services.close()


def weak_admin_token(settings: Settings) -> str | None:
    """A warning if the configured admin token is short enough to guess (tokens issued by the
    ledger are 43 random characters; nothing limits how often a token may be tried)."""
    token = (settings.admin_token or "").strip()
    if token and len(token) < 32:
        return (f"warning: LEDGER_ADMIN_TOKEN is {len(token)} characters long; use 32 or more random "
                "characters (e.g. `openssl rand -hex 32`), or leave it unset to have one generated")
    return None


@app.command()
def demo() -> None:
    """Load the demo ledger (teams, reps, plans, a quarter of deals) into an empty ledger."""
    from replay.demo import load_demo

    services = _services()
    if services.log.head:
        typer.echo(f"The ledger already holds {services.log.head} events; the demo loads only into an empty one.")
        raise typer.Exit(1)
    typer.echo(f"Loaded {load_demo(services.log)} events.")


@app.command()
def verify() -> None:
    """Recompute the hash chain from storage; exit 1 if any stored event was altered."""
    from ledger.settings import parse_database_url
    from ledger.store import EventStore
    from replay.chain import verify as verify_chain

    # The store alone: the books would first fold the log, which fails on the very damage this
    # command is meant to name (a row deleted, a type edited), with a traceback (decision 127).
    store = EventStore(parse_database_url(Settings().database_url))
    try:
        verdict = verify_chain(store)
    finally:
        store.close()
    typer.echo(json.dumps(verdict.body()))
    if verdict.ok and verdict.events_checked == 0:
        typer.echo("warning: no event is stored at LEDGER_DATABASE_URL; is it the ledger's?", err=True)
    if not verdict.ok:
        raise typer.Exit(1)


@app.command()
def replay() -> None:
    """Recompute every closed statement from the stored log; exit 1 on any difference."""
    from replay.audit import replay_closes

    services = _services()
    audit = replay_closes(services.store, services.books)
    typer.echo(f"closed statements checked: {audit.checked}")
    typer.echo(f"differences: {len(audit.differences)}")
    for difference in audit.differences:
        typer.echo(json.dumps(difference.__dict__, indent=2))
    if audit.first_bad_position is not None:
        typer.echo(f"stopped at position {audit.first_bad_position}: {audit.problem}")
    if not audit.ok:
        raise typer.Exit(1)


@app.command()
def rebuild(
    view: Annotated[
        bool, typer.Option("--view", help="bring the SQL statement view up to the head (resumable), not a dry fold")
    ] = False,
    restart: Annotated[bool, typer.Option("--restart", help="with --view: clear the view and start at 0")] = False,
    batch: Annotated[int, typer.Option(min=1, help="with --view: most events per transaction")] = VIEW_REBUILD_BATCH,
) -> None:
    """Fold the whole stored log into fresh projections, with a progress bar and events/s.

    The service's in-memory projections are rebuilt at every start; without
    options this runs the same fold on its own, to time it or to check a log
    reads back. With --view it rebuilds the persistent SQL statement view
    (see `ledger project`) batch by batch, each committed with its tracked
    position: stop it at any moment and run it again to go on from there.
    """
    import time

    from ledger.settings import parse_database_url
    from ledger.store import EventStore

    store = EventStore(parse_database_url(Settings().database_url))
    total = store.head()
    started = time.perf_counter()

    def rate(done: int) -> str:
        return f"{done / max(time.perf_counter() - started, 1e-9):,.0f} events/s"

    try:
        done = _rebuild_view(store, restart, batch, total, rate) if view else _rebuild_book(store, total, rate)
    finally:
        store.close()
    elapsed = time.perf_counter() - started
    typer.echo(f"{done} events in {elapsed:.2f} s ({rate(done)})")


def _rebuild_book(store: EventStore, total: int, rate: Callable[[int], str]) -> int:
    """Fold the whole stored log into a fresh book, as the service does at start; the events folded."""
    from ledger.damage import stored_events
    from ledger.heap import no_cyclic_gc
    from projections.book import Book

    book, done = Book(), 0
    with typer.progressbar(
        length=total, label="rebuilding", show_pos=True, item_show_func=lambda item: item
    ) as progress, no_cyclic_gc():
        for record, event in stored_events(store, 0, ahead=True):
            book.apply(record.position, record.event_id, event)
            done += 1
            if done % 10_000 == 0:  # the bar costs more than a fold step: move it now and then
                progress.current_item = rate(done)
                progress.update(10_000)
        progress.update(done % 10_000)
    return done


def _rebuild_view(store: EventStore, restart: bool, batch: int, total: int, rate: Callable[[int], str]) -> int:
    """Bring the SQL statement view up to the head as the projection's leader; returns the events applied."""
    from ledger.settings import parse_database_url
    from ledger.views import ViewMoved
    from replay.projector import projector_for

    settings = Settings()
    # No memo: a rebuild computes each statement once per batch and never reads it again, and
    # keeping the lines cost more than computing them anew (decision 124).
    projector = projector_for(
        store, parse_database_url(settings.database_url), batch, memo_lines=0, workers=settings.view_workers
    )
    if not projector.election.try_lead():
        failure = projector.election.failure
        projector.election.resign()
        if failure is not None:  # not a rival: the election's session could not be had
            typer.echo(f"error: the projection's election cannot reach the database: {failure}", err=True)
            raise typer.Exit(2)
        typer.echo("a `ledger project` worker leads the projection; stop it first", err=True)
        raise typer.Exit(3)
    tracked = done = 0
    try:
        if restart:
            projector.view.reset()
        tracked = projector.activate()
        typer.echo(f"the view is at position {tracked} of {total}", err=True)
        with typer.progressbar(
            length=total - tracked, label="projecting", show_pos=True, item_show_func=lambda item: item
        ) as progress:
            # Leadership is checked before each batch, as `ledger project` does: if the election's
            # session dropped, a standby may lead now (its writes and these would still not both
            # land: each is checked against the tracked position, `ViewMoved`). It ends at the head
            # it found: under a steady stream of appends each batch would find more, for ever.
            while (projector.book.position < total and projector.election.leading()
                   and (applied := _step_upto(projector, total))):
                done += applied
                progress.current_item = rate(done)
                progress.update(applied)
        if projector.book.position < total:
            _stopped(tracked + done, "this rebuild lost the projection's leadership")
    except ViewMoved as moved:  # this run's last batch, if a rival wrote first, was not written
        _stopped(tracked + done, str(moved))
    finally:
        projector.election.resign()
    return done


def _step_upto(projector: Projector, total: int) -> int:
    """One batch of the rebuild, none of it past `total`."""
    projector.batch = min(projector.batch, total - projector.book.position)
    return projector.step()


def _stopped(position: int, why: str) -> NoReturn:
    """End a view rebuild that another worker may have taken over, saying where it stopped."""
    typer.echo(f"stopped at position {position}: {why}; another worker may lead the projection "
               "(run `ledger rebuild --view` again once none does, to go on)", err=True)
    raise typer.Exit(3)


@app.command()
def project(
    batch: Annotated[int, typer.Option(min=1, help="most events applied per transaction")] = 10_000,
    poll: Annotated[float, typer.Option(min=0.01, help="seconds between looks at the log or the election")] = 0.2,
) -> None:
    """Keep the SQL statement view (ledger_view_statements) current; one worker leads, others stand by.

    Run one or more per ledger: the leader is elected by a PostgreSQL advisory
    lock (a file lock on SQLite); a standby takes over when the leader dies.
    Stops cleanly on SIGTERM. To catch the view up once and exit, use
    `ledger rebuild --view`.
    """
    import signal
    import threading

    from api.logs import configure_logging
    from ledger.settings import parse_database_url
    from ledger.store import EventStore
    from replay.projector import projector_for

    configure_logging()
    settings = Settings()
    database = parse_database_url(settings.database_url)
    store = EventStore(database)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    projector_for(store, database, batch, settings.memo_lines, settings.view_workers).run(stop, poll)
    store.close()


@export_app.command("payouts")
def export_payouts(
    period: Annotated[str, typer.Option(help="a closed period, YYYY-MM or YYYY-Qn")],
    output: Annotated[Path | None, typer.Option(help="file to write (default: standard output)")] = None,
) -> None:
    """Write the payroll file of a closed period: CSV with a header and a checksum line."""
    from ledger.values import parse_period
    from replay.payouts import PeriodNotClosed, payout_rows, payouts_csv

    services = _services()
    try:
        rows = payout_rows(services.books.at(None), parse_period(period))
        text = payouts_csv(rows, period, services.settings.currency)
    except ValueError as error:
        typer.echo(f"cannot export {period}: {error}", err=True)
        raise typer.Exit(2) from None
    except PeriodNotClosed:
        typer.echo(f"cannot export {period}: the period is not closed; payroll files are for closed periods", err=True)
        raise typer.Exit(2) from None
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")


@app.command()
def token(
    role: Annotated[str, typer.Argument(help="admin, finance, integration, manager or rep")],
    participant_id: Annotated[str | None, typer.Option(help="required for manager and rep")] = None,
) -> None:
    """Issue a token from the command line (for operators with database access)."""
    from ledger.tokens import ROLES

    if role not in ROLES or (role in ("manager", "rep") and participant_id is None):
        typer.echo("give a role (admin, finance, integration, manager, rep) and --participant-id for manager/rep")
        raise typer.Exit(2)
    services = _services()
    if participant_id is not None and not services.books.head.has_participant(participant_id):
        typer.echo(f"unknown participant '{participant_id}'")
        raise typer.Exit(2)
    token_id, value = services.tokens.issue(role, participant_id, None)
    typer.echo(json.dumps({"token_id": token_id, "token": value, "role": role, "participant_id": participant_id}))


def _clean_exit_server_class() -> type[uvicorn.Server]:
    from types import FrameType

    import uvicorn

    class CleanExitServer(uvicorn.Server):
        """uvicorn, minus re-raising SIGTERM after its graceful shutdown.

        uvicorn re-raises a caught signal once it has shut down, so the process
        ends "killed by signal"; a clean stop should exit 0 for supervisors.
        """

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            self._captured_signals.clear()

    return CleanExitServer


def main() -> None:
    """The console script. A configuration the commands cannot start with (a bad setting, a
    database that refuses the connection) is one line on stderr and exit 2, not a traceback."""
    from eventsourcing.persistence import InterfaceError, InternalError, OperationalError
    from pydantic import ValidationError

    from ledger.damage import LogDamaged
    from ledger.settings import DatabaseUrlError
    from ledger.store import StoreUnavailable
    from replay.asof import BooksBroken

    try:
        app()
    except (ValidationError, DatabaseUrlError) as error:
        typer.echo(_one_line(f"error: the configuration: {error}"), err=True)
        sys.exit(2)
    except StoreUnavailable as error:
        typer.echo(_one_line(f"error: {error}: {error.__cause__ or ''}"), err=True)
        sys.exit(2)
    except (OperationalError, InterfaceError, InternalError) as error:  # the database's fault, not a bug
        typer.echo(_one_line(f"error: the database: {type(error).__name__}: {error}"), err=True)
        sys.exit(2)
    except (LogDamaged, BooksBroken) as error:  # what the stored log holds, not the configuration
        typer.echo(_one_line(f"error: {error}; `ledger verify` checks the stored chain"), err=True)
        sys.exit(1)


def _one_line(text: str) -> str:
    """pydantic's and libpq's messages span lines; an operator's terminal or log wants one."""
    return " ".join(text.split()).removesuffix(":")


if __name__ == "__main__":
    main()
