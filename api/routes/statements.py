"""Statements (§6), one line at a time if asked."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import PrincipalDep, ReadAt, ReadAtDep, ServicesDep, checked_period, resolve_position
from api.errors import NotFound
from api.responses import FastJSONResponse, answer
from projections.book import Statement
from replay.access import check_statement_caller, check_statement_reader

router = APIRouter(prefix="/v1/statements", tags=["statements"])


def _position(svc: ServicesDep, who: PrincipalDep, participant_id: str, period: str, at: ReadAt) -> int:
    """The checks that need no books, then the position: before the books are held, since finding
    it may wait for the log (a position beyond this process's head), and other reads must not
    wait with it."""
    check_statement_caller(who, participant_id)
    checked_period(period)
    return resolve_position(svc, at)


def _statement(svc: ServicesDep, who: PrincipalDep, participant_id: str, period: str, position: int) -> Statement:
    book = svc.books.at(position)
    check_statement_reader(book, who, participant_id, period)
    if not book.has_participant(participant_id):
        raise NotFound(f"participant '{participant_id}' is not registered")
    return book.statement(participant_id, period)


@router.get("/{participant_id}/{period}", response_model=dict[str, Any])
def get_statement(
    participant_id: str,
    period: str,
    svc: ServicesDep,
    who: PrincipalDep,
    at: ReadAtDep,
) -> FastJSONResponse:
    position = _position(svc, who, participant_id, period, at)
    with svc.books.reading():
        return answer(_statement(svc, who, participant_id, period, position).body(position))


@router.get("/{participant_id}/{period}/lines/{n}", response_model=dict[str, Any])
def explain_line(
    participant_id: str,
    period: str,
    n: int,
    svc: ServicesDep,
    who: PrincipalDep,
    at: ReadAtDep,
) -> FastJSONResponse:
    """One line (numbered from 1) with its arithmetic in exact figures, for a calculator."""
    position = _position(svc, who, participant_id, period, at)
    with svc.books.reading():
        statement = _statement(svc, who, participant_id, period, position)
    if not 1 <= n <= len(statement.lines):
        raise NotFound(f"the statement has {len(statement.lines)} lines; there is no line {n}")
    line = statement.lines[n - 1]
    return answer({
        "participant_id": participant_id,
        "period": period,
        "as_of_position": position,
        "line_number": n,
        "line": line.body(),
        "explanation": line.explain(),
    })
