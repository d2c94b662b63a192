"""One strict pydantic model per event type of the contract (§3, §4).

The models check shape and values only; rules that need the ledger (unknown
ids, closed periods) live in `ledger.validation`. Extra fields are forbidden
everywhere, so a typo in an integration is a 422 rather than silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from ledger.values import Bound, Day, Id, Money, Period, Text, money, rate


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _bound(predicate: Callable[[Decimal], bool], message: str) -> AfterValidator:
    """A single-field rule, checked with the field so the error names it (and others are still found)."""

    def check(value: Decimal) -> Decimal:
        if not predicate(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


_ZERO, _ONE = Decimal(0), Decimal(1)
PositiveMoney = Annotated[Decimal, money(Bound("must be > 0", gt=_ZERO))]
NonNegativeMoney = Annotated[Decimal, money(Bound("must be >= 0", ge=_ZERO))]
NonZeroMoney = Annotated[Money, _bound(lambda v: v != 0, "must not be zero")]  # pydantic-core has no "not equal"
UnitRate = Annotated[Decimal, rate(Bound("must be between 0 and 1", ge=_ZERO, le=_ONE))]
NonNegativeRate = Annotated[Decimal, rate(Bound("must be >= 0", ge=_ZERO))]
Share = Annotated[Decimal, rate(Bound("must be in (0, 1]", gt=_ZERO, le=_ONE))]


def _require(condition: bool, field: str, message: str) -> None:
    """A rule across fields: the "@field:" prefix lets the error name the field it is about."""
    if not condition:
        raise ValueError(f"@{field}: {message}")


# --- plan rules (§4) --------------------------------------------------------------------


class Tier(Strict):
    from_: NonNegativeRate = Field(alias="from")
    rate: UnitRate


class Spiff(Strict):
    product: Id
    amount: PositiveMoney


#: Spiffs past a plan's first bad one whose problems are named too (decision 123).
SPIFFS_NAMED_PAST_THE_FIRST_BAD = 500


class PlanRules(Strict):
    period: Literal["month", "quarter"]
    basis: Literal["booking", "collection"]
    tier_method: Literal["marginal", "retroactive"]
    tiers: list[Tier] = Field(min_length=1, max_length=20)
    cap: NonNegativeMoney | None
    spiffs: list[Spiff]
    clawback_days: StrictInt | None = Field(ge=0, le=3650)
    override_rate: UnitRate

    @field_validator("spiffs", mode="wrap")
    @classmethod
    def _spiffs_named_in_part(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """A plan may hold any number of spiffs; a long list with bad ones names the problems of the
        first bad one and of the next `SPIFFS_NAMED_PAST_THE_FIRST_BAD` only: a 16 MiB list of empty
        spiffs has 11 million problems, which took pydantic 26 s and 5 GB to make."""
        if type(value) is list and len(value) > SPIFFS_NAMED_PAST_THE_FIRST_BAD:
            try:
                return _SPIFFS_TO_THE_FIRST_BAD.validate_python(value)
            except ValidationError as error:
                first_bad = error.errors(include_url=False, include_input=False)[0]["loc"][0]
                if isinstance(first_bad, int):
                    handler(value[: first_bad + 1 + SPIFFS_NAMED_PAST_THE_FIRST_BAD])  # raises, as it holds it
        return handler(value)

    @model_validator(mode="after")
    def _consistent(self) -> PlanRules:
        _require(self.tiers[0].from_ == 0, "tiers.0.from", "the first tier's 'from' must be 0")
        for i, (low, high) in enumerate(pairwise(tier.from_ for tier in self.tiers)):
            _require(low < high, f"tiers.{i + 1}.from", "tier 'from' values must be strictly ascending")
        _require(self.cap is None or self.basis == "booking", "cap", "a cap is only allowed with basis 'booking'")
        seen: set[str] = set()  # a set: a look back along the list took 2 s for 20,000 spiffs
        for i, spiff in enumerate(self.spiffs):
            _require(spiff.product not in seen, f"spiffs.{i}.product", f"product '{spiff.product}' appears twice")
            seen.add(spiff.product)
        return self


#: The spiffs up to the first bad one, and no further (pydantic's `fail_fast`).
_SPIFFS_TO_THE_FIRST_BAD: TypeAdapter[list[Spiff]] = TypeAdapter(Annotated[list[Spiff], Field(fail_fast=True)])


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
            "effective_to",
            "must be on or after 'effective_from'",
        )
        return self


class TargetSet(Strict):
    participant_id: Id
    period: Period
    amount: NonNegativeMoney


class Credit(Strict):
    participant_id: Id
    share: Share


class DealBooked(Strict):
    deal_id: Id
    booked_on: Day
    amount: PositiveMoney
    currency: str
    product: Id | None = None
    customer: Text | None = None
    credits: list[Credit] = Field(min_length=1, max_length=20)

    @field_validator("credits")
    @classmethod
    def _distinct(cls, credits: list[Credit]) -> list[Credit]:
        # A field validator, not a model one: pydantic calls it for a fraction of the cost.
        if len(credits) < 2:  # most deals: nothing to compare (a third of the cost of the loop)
            return credits
        seen: set[str] = set()
        for i, credit in enumerate(credits):
            _require(credit.participant_id not in seen, f"{i}.participant_id", "appears twice in 'credits'")
            seen.add(credit.participant_id)
        return credits


class DealAmended(Strict):
    deal_id: Id
    amount: PositiveMoney
    amended_on: Day


class DealCancelled(Strict):
    deal_id: Id
    cancelled_on: Day


class PaymentReceived(Strict):
    payment_id: Id
    deal_id: Id
    amount: PositiveMoney
    received_on: Day


class PaymentReversed(Strict):
    payment_id: Id
    reversed_on: Day


class AdjustmentRecorded(Strict):
    adjustment_id: Id
    participant_id: Id
    period: Period
    amount: NonZeroMoney
    reason: Text


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

