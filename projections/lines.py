"""Statement lines: the payable (or earned) amounts, each with the facts that explain it."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from ledger.values import exact_str, money_str

Kind = Literal["commission", "earned", "release", "spiff", "override", "cap", "manual", "adjustment"]
_ORDER: dict[str, int] = {
    "commission": 0,
    "earned": 0,
    "spiff": 1,
    "release": 2,
    "override": 3,
    "cap": 4,
    "manual": 5,
    "adjustment": 6,
}


@dataclass(frozen=True, slots=True)
class TierPortion:
    """The part of a credit that fell in one tier (marginal method)."""

    tier: int
    from_: Decimal
    rate: Decimal
    lower: Decimal
    upper: Decimal | None
    portion: Decimal

    def body(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "from": exact_str(self.from_),
            "rate": exact_str(self.rate),
            "range_from": exact_str(self.lower),
            "range_to": None if self.upper is None else exact_str(self.upper),
            "portion": exact_str(self.portion),
            "amount": exact_str(self.portion * self.rate),
        }


@dataclass(frozen=True, slots=True)
class Line:
    kind: Kind
    amount: Decimal
    period: str
    sort_key: tuple[Any, ...]
    event_ids: tuple[str, ...]
    deal_id: str | None = None
    payment_id: str | None = None
    report_id: str | None = None
    credit: Decimal | None = None
    share: Decimal | None = None
    plan_id: str | None = None
    plan_version: int | None = None
    rate: Decimal | None = None
    tiers: tuple[TierPortion, ...] | None = None
    tier_method: str | None = None
    target: Decimal | None = None
    credited_before: Decimal | None = None
    exact: Decimal | None = None
    for_period: str | None = None
    reason: str | None = None
    details: tuple[tuple[str, str], ...] = field(default=())

    @property
    def payable(self) -> bool:
        return self.kind != "earned"

    @property
    def order(self) -> tuple[Any, ...]:
        return (_ORDER[self.kind], *self.sort_key)

    def body(self) -> dict[str, Any]:
        """The line as the API shows it: only the facts that apply to its kind."""
        out: dict[str, Any] = {"kind": self.kind, "amount": money_str(self.amount)}
        optional: dict[str, Any] = {
            "deal_id": self.deal_id,
            "payment_id": self.payment_id,
            "participant_id": self.report_id,
            "credit": None if self.credit is None else exact_str(self.credit),
            "share": None if self.share is None else exact_str(self.share),
            "plan_id": self.plan_id,
            "plan_version": self.plan_version,
            "tier_method": self.tier_method,
            "rate": None if self.rate is None else exact_str(self.rate),
            "tiers": None if self.tiers is None else [t.body() for t in self.tiers],
            "target": None if self.target is None else money_str(self.target),
            "credited_before": None if self.credited_before is None else exact_str(self.credited_before),
            "exact_amount": None if self.exact is None else exact_str(self.exact),
            "for_period": self.for_period,
            "reason": self.reason,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        out.update(dict(self.details))
        out["event_ids"] = list(self.event_ids)
        return out


def payable_total(lines: list[Line] | tuple[Line, ...]) -> Decimal:
    return sum((line.amount for line in lines if line.payable), Decimal(0))
