"""The ledger's facts, folded from events in position order.

This is plain data: who is registered, which plan versions exist, what each
deal looks like now. It never computes money; `projections.statement` does,
from this state alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from ledger import events as ev
from ledger.events import PlanRules
from ledger.values import period_length


@dataclass(frozen=True, slots=True)
class Transfer:
    effective_date: date
    position: int
    team_id: str
    manager_id: str | None


@dataclass(slots=True)
class Participant:
    participant_id: str
    name: str
    start_date: date
    team_id: str
    manager_id: str | None
    transfers: list[Transfer] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PlanVersion:
    plan_id: str
    version: int
    effective_from: date
    rules: PlanRules
    position: int
    event_id: str


@dataclass(frozen=True, slots=True)
class Assignment:
    plan_id: str
    effective_from: date
    effective_to: date | None
    position: int

    def covers(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


@dataclass(frozen=True, slots=True)
class TargetEntry:
    amount: Decimal
    position: int
    event_id: str


@dataclass(frozen=True, slots=True)
class CashMove:
    """A payment (+) or its reversal (-), in the deal's position order."""

    position: int
    event_id: str
    payment_id: str
    amount: Decimal
    on: date


@dataclass(slots=True)
class Deal:
    deal_id: str
    booked_on: date
    amount: Decimal
    product: str | None
    credits: tuple[tuple[str, Decimal], ...]
    position: int
    event_id: str
    amend_event_ids: list[str] = field(default_factory=list)
    cancelled_on: date | None = None
    cancel_event_id: str | None = None
    cash: list[CashMove] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Adjustment:
    adjustment_id: str
    period: str
    amount: Decimal
    reason: str
    position: int
    event_id: str


@dataclass(slots=True)
class Dispute:
    dispute_id: str
    participant_id: str
    period: str
    deal_id: str | None
    reason: str
    opened_event_id: str
    resolution: str | None = None
    note: str | None = None
    resolved_event_id: str | None = None


@dataclass(slots=True)
class Payment:
    deal_id: str
    amount: Decimal


class LedgerState:
    """Mutable fold; apply events in position order only."""

    def __init__(self) -> None:
        self.position = 0
        self.participants: dict[str, Participant] = {}
        self.plans: dict[str, list[PlanVersion]] = {}
        self.assignments: dict[str, list[Assignment]] = {}
        self.targets: dict[tuple[str, str], TargetEntry] = {}
        self.deals: dict[str, Deal] = {}
        self.deals_of: dict[str, list[str]] = {}
        self.payments: dict[str, Payment] = {}
        self.adjustments_of: dict[str, list[Adjustment]] = {}
        self.reports_ever: dict[str, set[str]] = {}
        self.disputes: dict[str, Dispute] = {}
        self.closed: dict[str, int] = {}
        self.last_closed: dict[str, str] = {}

    def apply(self, position: int, event_id: str, event: ev.EventData) -> None:
        self.position = position
        match event:
            case ev.ParticipantRegistered():
                self.participants[event.participant_id] = Participant(
                    event.participant_id, event.name, event.start_date, event.team_id, event.manager_id
                )
                self._note_manager(event.manager_id, event.participant_id)
            case ev.ParticipantTransferred():
                self.participants[event.participant_id].transfers.append(
                    Transfer(event.effective_date, position, event.team_id, event.manager_id)
                )
                self._note_manager(event.manager_id, event.participant_id)
            case ev.PlanPublished():
                versions = self.plans.setdefault(event.plan_id, [])
                versions.append(
                    PlanVersion(
                        event.plan_id, len(versions) + 1, event.effective_from, event.rules, position, event_id
                    )
                )
            case ev.PlanAssigned():
                self.assignments.setdefault(event.participant_id, []).append(
                    Assignment(event.plan_id, event.effective_from, event.effective_to, position)
                )
            case ev.TargetSet():
                self.targets[(event.participant_id, event.period)] = TargetEntry(
                    event.amount, position, event_id
                )
            case ev.DealBooked():
                credits = tuple((c.participant_id, c.share) for c in event.credits)
                self.deals[event.deal_id] = Deal(
                    event.deal_id, event.booked_on, event.amount, event.product, credits, position, event_id
                )
                for participant_id, _ in credits:
                    self.deals_of.setdefault(participant_id, []).append(event.deal_id)
            case ev.DealAmended():
                deal = self.deals[event.deal_id]
                deal.amount = event.amount
                deal.amend_event_ids.append(event_id)
            case ev.DealCancelled():
                deal = self.deals[event.deal_id]
                deal.cancelled_on = event.cancelled_on
                deal.cancel_event_id = event_id
            case ev.PaymentReceived():
                self.payments[event.payment_id] = Payment(event.deal_id, event.amount)
                self.deals[event.deal_id].cash.append(
                    CashMove(position, event_id, event.payment_id, event.amount, event.received_on)
                )
            case ev.PaymentReversed():
                payment = self.payments[event.payment_id]
                self.deals[payment.deal_id].cash.append(
                    CashMove(position, event_id, event.payment_id, -payment.amount, event.reversed_on)
                )
            case ev.AdjustmentRecorded():
                self.adjustments_of.setdefault(event.participant_id, []).append(
                    Adjustment(
                        event.adjustment_id, event.period, event.amount, event.reason, position, event_id
                    )
                )
            case ev.PeriodClosed():
                self.closed[event.period] = position
                self.last_closed[period_length(event.period)] = event.period
            case ev.DisputeOpened():
                self.disputes[event.dispute_id] = Dispute(
                    event.dispute_id,
                    event.participant_id,
                    event.period,
                    event.deal_id,
                    event.reason,
                    event_id,
                )
            case ev.DisputeResolved():
                dispute = self.disputes[event.dispute_id]
                dispute.resolution = event.resolution
                dispute.note = event.note
                dispute.resolved_event_id = event_id

    def _note_manager(self, manager_id: str | None, participant_id: str) -> None:
        if manager_id is not None:
            self.reports_ever.setdefault(manager_id, set()).add(participant_id)
