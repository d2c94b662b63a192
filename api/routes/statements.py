"""Statements (§6), one line at a time if asked."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import PrincipalDep, ReadAt, ReadAtDep, ServicesDep, checked_period, resolve_position
from api.errors import NotFound
from replay.access import check_statement_caller, check_statement_reader

router = APIRouter(prefix="/v1/statements", tags=["statements"])


def _statement(svc: ServicesDep, who: PrincipalDep, participant_id: str, period: str, at: ReadAt) -> dict[str, Any]:
    check_statement_caller(who, participant_id)
    checked_period(period)
    position = resolve_position(svc, at)
    book = svc.books.at(position)
    check_statement_reader(book, who, participant_id, period)
    if not book.has_participant(participant_id):
        raise NotFound(f"participant '{participant_id}' is not registered")
    return book.statement(participant_id, period).body(position)


@router.get("/{participant_id}/{period}")
async def get_statement(
    participant_id: str,
    period: str,
    svc: ServicesDep,
    who: PrincipalDep,
    at: ReadAtDep,
) -> dict[str, Any]:
    return _statement(svc, who, participant_id, period, at)


@router.get("/{participant_id}/{period}/lines/{n}")
async def explain_line(
    participant_id: str,
    period: str,
    n: int,
    svc: ServicesDep,
    who: PrincipalDep,
    at: ReadAtDep,
) -> dict[str, Any]:
    """One line (numbered from 1) with the arithmetic spelled out for a calculator."""
    statement = _statement(svc, who, participant_id, period, at)
    lines = statement["lines"]
    if not 1 <= n <= len(lines):
        raise NotFound(f"the statement has {len(lines)} lines; there is no line {n}")
    line = lines[n - 1]
    return {
        "participant_id": participant_id,
        "period": period,
        "as_of_position": statement["as_of_position"],
        "line_number": n,
        "line": line,
        "explanation": explain(line),
    }


def explain(line: dict[str, Any]) -> list[str]:
    """Plain-language steps that reproduce the line's amount."""
    steps: list[str] = []
    kind = line["kind"]
    if "credit" in line and "share" in line and kind in ("commission", "earned"):
        steps.append(f"credit = deal amount x share {line['share']} = {line['credit']}")
    if "tiers" in line:
        steps.append(f"target {line.get('target', 'none')}; credits before this one: {line['credited_before']}")
        for tier in line["tiers"]:
            upper = tier["range_to"] if tier["range_to"] is not None else "no limit"
            steps.append(
                f"tier {tier['tier']} (from {tier['from']}, covering [{tier['range_from']}, {upper})): "
                f"{tier['portion']} x {tier['rate']} = {tier['amount']}"
            )
    elif "rate" in line and "credit" in line:
        steps.append(f"{line['credit']} x {line['rate']} = {line.get('exact_amount', line['amount'])}")
    if "earned" in line:
        steps.append(
            f"released to date = round(earned {line['earned']} x paid so far / deal amount {line['deal_amount']}); "
            "this line is the change from the previous payment"
        )
    if kind == "adjustment":
        steps.append(f"change of {line['for_period']}'s own total since the latest close, paid in this period")
    steps.append(f"rounded half-up to cents: {line['amount']}")
    return steps
