"""One strict pydantic model per event type of the contract (§3, §4).

The models check shape and values only; rules that need the ledger (unknown
ids, closed periods) live in `ledger.validation`. Extra fields are forbidden
everywhere, so a typo in an integration is a 422 rather than silently ignored.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from ledger.values import Day, Id, Money, Period, Rate, Text


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


# --- plan rules (§4) --------------------------------------------------------------------


class Tier(Strict):
    from_: Rate = Field(alias="from")
    rate: Rate

    @model_validator(mode="after")
    def _bounds(self) -> Tier:
        _require(self.from_ >= 0, "tier 'from' must be >= 0")
        _require(0 <= self.rate <= 1, "tier 'rate' must be between 0 and 1")
        return self


class Spiff(Strict):
    product: Id
    amount: Money

    @model_validator(mode="after")
    def _positive(self) -> Spiff:
        _require(self.amount > 0, "spiff 'amount' must be > 0")
        return self


class PlanRules(Strict):
    period: Literal["month", "quarter"]
    basis: Literal["booking", "collection"]
    tier_method: Literal["marginal", "retroactive"]
    tiers: list[Tier] = Field(min_length=1, max_length=20)
    cap: Money | None
    spiffs: list[Spiff]
    clawback_days: StrictInt | None = Field(ge=0, le=3650)
    override_rate: Rate

    @model_validator(mode="after")
    def _consistent(self) -> PlanRules:
        _require(self.tiers[0].from_ == 0, "the first tier's 'from' must be 0")
        froms = [tier.from_ for tier in self.tiers]
        _require(
            all(a < b for a, b in pairwise(froms)),
            "tier 'from' values must be strictly ascending",
        )
        _require(self.cap is None or self.cap >= 0, "'cap' must be >= 0")
        _require(self.cap is None or self.basis == "booking", "'cap' is only allowed with basis 'booking'")
        products = [spiff.product for spiff in self.spiffs]
        _require(len(products) == len(set(products)), "a spiff product appears twice")
        _require(0 <= self.override_rate <= 1, "'override_rate' must be between 0 and 1")
        return self


# --- events (§3) ------------------------------------------------------------------------


class ParticipantRegistered(Strict):
    participant_id: Id
    name: Text
    team_id: Id
    manager_id: Id | None = None
    start_date: Day


class ParticipantTransferred(Strict):
    participant_id: Id
    team_id: Id
    manager_id: Id | None = None
    effective_date: Day


class PlanPublished(Strict):
    plan_id: Id
    effective_from: Day
    rules: PlanRules


class PlanAssigned(Strict):
    participant_id: Id
    plan_id: Id
    effective_from: Day
    effective_to: Day | None = None

    @model_validator(mode="after")
    def _range(self) -> PlanAssigned:
        _require(
            self.effective_to is None or self.effective_to >= self.effective_from,
            "'effective_to' must be on or after 'effective_from'",
        )
        return self


class TargetSet(Strict):
    participant_id: Id
    period: Period
    amount: Money

    @model_validator(mode="after")
    def _non_negative(self) -> TargetSet:
        _require(self.amount >= 0, "'amount' must be >= 0")
        return self


class Credit(Strict):
    participant_id: Id
    share: Rate

    @model_validator(mode="after")
    def _share(self) -> Credit:
        _require(0 < self.share <= 1, "'share' must be in (0, 1]")
        return self


class DealBooked(Strict):
    deal_id: Id
    booked_on: Day
    amount: Money
    currency: str
    product: Id | None = None
    customer: Text | None = None
    credits: list[Credit] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _deal(self) -> DealBooked:
        _require(self.amount > 0, "'amount' must be > 0")
        ids = [credit.participant_id for credit in self.credits]
        _require(len(ids) == len(set(ids)), "a participant appears twice in 'credits'")
        return self


class DealAmended(Strict):
    deal_id: Id
    amount: Money
    amended_on: Day

    @model_validator(mode="after")
    def _positive(self) -> DealAmended:
        _require(self.amount > 0, "'amount' must be > 0")
        return self


class DealCancelled(Strict):
    deal_id: Id
    cancelled_on: Day


class PaymentReceived(Strict):
    payment_id: Id
    deal_id: Id
    amount: Money
    received_on: Day

    @model_validator(mode="after")
    def _positive(self) -> PaymentReceived:
        _require(self.amount > 0, "'amount' must be > 0")
        return self


class PaymentReversed(Strict):
    payment_id: Id
    reversed_on: Day


class AdjustmentRecorded(Strict):
    adjustment_id: Id
    participant_id: Id
    period: Period
    amount: Money
    reason: Text

    @model_validator(mode="after")
    def _non_zero(self) -> AdjustmentRecorded:
        _require(self.amount != 0, "'amount' must not be zero")
        return self


class PeriodClosed(Strict):
    period: Period


class DisputeOpened(Strict):
    dispute_id: Id
    participant_id: Id
    period: Period
    deal_id: Id | None = None
    reason: Text


class DisputeResolved(Strict):
    dispute_id: Id
    resolution: Literal["upheld", "rejected"]
    note: Text


EventData = (
    ParticipantRegistered
    | ParticipantTransferred
    | PlanPublished
    | PlanAssigned
    | TargetSet
    | DealBooked
    | DealAmended
    | DealCancelled
    | PaymentReceived
    | PaymentReversed
    | AdjustmentRecorded
    | PeriodClosed
    | DisputeOpened
    | DisputeResolved
)

#: The contract's `type` names. They double as the stable topics in the event
#: store, so renaming a class never orphans stored events.
EVENT_TYPES: dict[str, type[EventData]] = {
    cls.__name__: cls
    for cls in (
        ParticipantRegistered,
        ParticipantTransferred,
        PlanPublished,
        PlanAssigned,
        TargetSet,
        DealBooked,
        DealAmended,
        DealCancelled,
        PaymentReceived,
        PaymentReversed,
        AdjustmentRecorded,
        PeriodClosed,
        DisputeOpened,
        DisputeResolved,
    )
}

