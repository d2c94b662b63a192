"""Audit endpoints: chain verification, replay of closed statements, payouts, disputes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response

from api.deps import PrincipalDep, ServicesDep, checked_period
from api.negotiation import preferred
from replay.access import AUDITORS, require
from replay.audit import replay_closes
from replay.chain import verify
from replay.payouts import payout_rows, payouts_csv, payouts_json

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get("/audit/verify")
def verify_chain(svc: ServicesDep, who: PrincipalDep) -> dict[str, Any]:
    require(who.role in AUDITORS, "only admin and finance verify the chain")
    return verify(svc.store, svc.log.last).body()


@router.post("/audit/replay")
def replay(svc: ServicesDep, who: PrincipalDep) -> dict[str, Any]:
    """Recompute every closed statement from the stored log and list differences from the frozen ones."""
    require(who.role in AUDITORS, "only admin and finance run a replay audit")
    svc.log.catch_up()
    return replay_closes(svc.store, svc.books).body()


@router.get("/payouts/{period}", response_model=None)
def payouts(
    period: str, request: Request, response: Response, svc: ServicesDep, who: PrincipalDep
) -> Response | dict[str, Any]:
    """What payroll pays: the frozen totals of a closed period (CSV when Accept prefers text/csv;
    each answer says it varies by Accept)."""
    require(who.role in AUDITORS, "only admin and finance export payouts")
    checked_period(period)
    svc.log.catch_up()
    with svc.books.reading():
        book = svc.books.at(None)
        rows = payout_rows(book, period)
    currency = svc.settings.currency
    accept = ", ".join(request.headers.getlist("accept"))  # repeated lines are one list (RFC 9110)
    if preferred(accept, ("application/json", "text/csv")) == "text/csv":
        return PlainTextResponse(
            payouts_csv(rows, period, currency),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="payouts-{period}.csv"', "Vary": "Accept"},
        )
    response.headers["Vary"] = "Accept"
    return payouts_json(rows, period, currency, book.position)


@router.get("/disputes")
def disputes(
    svc: ServicesDep,
    who: PrincipalDep,
    status: Annotated[Literal["open", "upheld", "rejected"] | None, Query()] = None,
    period: Annotated[str | None, Query()] = None,
    participant_id: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    require(who.role in AUDITORS, "only admin and finance list disputes")
    if period is not None:
        checked_period(period)
    svc.log.catch_up()
    with svc.books.reading():
        rows = svc.books.at(None).disputes(participant_id, period, status)
    return {"disputes": rows}
