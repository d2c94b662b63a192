"""Attainment and rankings (§6), filtered to what the caller may see (§7)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, ReadAtDep, ServicesDep, checked_period, resolve_position
from api.responses import FastJSONResponse, answer
from replay.access import check_attainment_caller, check_reader, visible_attainment, visible_rankings

router = APIRouter(prefix="/v1", tags=["views"])

PeriodQuery = Annotated[str, Query(description="YYYY-MM or YYYY-Qn")]
TeamQuery = Annotated[str | None, Query()]


@router.get("/attainment", response_model=dict[str, Any])
def attainment(
    svc: ServicesDep,
    who: PrincipalDep,
    at: ReadAtDep,
    period: PeriodQuery,
    team_id: TeamQuery = None,
) -> FastJSONResponse:
    check_attainment_caller(who)
    checked_period(period)
    position = resolve_position(svc, at)  # before the books are held: it may wait for the log
    with svc.books.reading():
        rows = visible_attainment(svc.books.at(position), who, period, team_id)
        return answer({"period": period, "as_of_position": position, "rows": [row.body() for row in rows]})


@router.get("/rankings", response_model=dict[str, Any])
def rankings(
    svc: ServicesDep,
    who: PrincipalDep,
    at: ReadAtDep,
    period: PeriodQuery,
    team_id: TeamQuery = None,
) -> FastJSONResponse:
    check_reader(who)
    checked_period(period)
    anonymous = svc.settings.ranking_names == "anonymous"
    salt = svc.tokens.salt() if anonymous and who.role == "rep" else ""
    position = resolve_position(svc, at)  # before the books are held: it may wait for the log
    with svc.books.reading():
        rows = visible_rankings(svc.books.at(position), who, period, team_id, anonymous, salt)
        return answer({"period": period, "as_of_position": position, "rows": rows})
