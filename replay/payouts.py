"""Payroll export: the frozen payable totals of a closed period, with a checksum."""

from __future__ import annotations

import csv
import hashlib
import io
from decimal import Decimal
from typing import Any

from ledger.values import money_str
from projections.book import BookView


class PeriodNotClosed(Exception):
    pass


def payout_rows(book: BookView, period: str) -> list[dict[str, str]]:
    """Every participant registered when the period closed, with the frozen payable total."""
    if not book.state.is_closed(period, book.position):
        raise PeriodNotClosed(period)
    rows = []
    for row in book.rows(period):
        statement = book.statement(row.participant_id, period)
        rows.append({"participant_id": row.participant_id, "team_id": row.team_id, "total": money_str(statement.total)})
    return rows


def payouts_csv(rows: list[dict[str, str]], period: str, currency: str) -> str:
    """CSV with a header row and a final checksum line over every byte before it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["participant_id", "team_id", "period", "currency", "total"])
    for row in rows:
        writer.writerow([row["participant_id"], row["team_id"], period, currency, row["total"]])
    body = buffer.getvalue()
    total = sum((Decimal(row["total"]) for row in rows), Decimal(0))
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return body + f"# rows={len(rows)} sum={money_str(total)} sha256={digest}\n"


def payouts_json(rows: list[dict[str, str]], period: str, currency: str, position: int) -> dict[str, Any]:
    text = payouts_csv(rows, period, currency)
    checksum = text.rstrip("\n").rsplit("sha256=", 1)[1]
    total = sum((Decimal(row["total"]) for row in rows), Decimal(0))
    return {
        "period": period,
        "currency": currency,
        "as_of_position": position,
        "rows": rows,
        "count": len(rows),
        "sum": money_str(total),
        "checksum": checksum,
    }
