"""Parsing envelopes and checking events against the ledger (§3's rejection rules).

`ReferenceIndex` knows just enough of the ledger to decide whether an event
refers to things that exist. A batch is checked against an overlay of the
index, so its later events see its earlier ones and a rejected batch leaves
the real index untouched.
"""

from __future__ import annotations

import copy
import functools
from collections import ChainMap
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel, ValidationError

from ledger import events as ev
from ledger.immutable import immutable
from ledger.values import is_id, next_period, parse_id, period_length


@dataclass(frozen=True)
class Problem:
    field: str
    problem: str
    index: int | None = None
    #: A conflict (an out-of-order period close) answers 409 rather than 422.
    conflict: bool = False

    def at(self, index: int | None) -> Problem:
        return Problem(self.field, self.problem, index, self.conflict)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "problem": self.problem}
        if self.index is not None:
            out = {"index": self.index, **out}
        return out


@immutable
class Envelope:
    event_id: str
    type: str
    data: dict[str, Any]
    event: ev.EventData


_ENVELOPE_KEYS = ("event_id", "type", "data")


#: Each model's compiled validator, called directly: `model_validate` costs a third more per event.
_VALIDATORS: dict[str, Callable[[Any], ev.EventData]] = {
    name: model.__pydantic_validator__.validate_python for name, model in ev.EVENT_TYPES.items()
}


#: The most problems one request names; one more then says how many there were. A 3 MiB event
#: of 1,000,000 empty spiffs has 2,000,000 problems: naming each took 29 s and 3.2 GB, for an
#: answer of 230 MiB, while every other append waited (decision 123).
MAX_PROBLEMS = 1_000
#: Unknown keys an object keeps in the sample of an event with more problems than that.
_SAMPLE = 100
#: Every field name (or alias) of the event models, kept in any sample: a field left out of it
#: would be named "field required", which it is not.
_FIELDS = frozenset(
    key
    for model in vars(ev).values()
    if isinstance(model, type) and issubclass(model, BaseModel)
    for name, info in model.model_fields.items()
    for key in (name, info.alias)
    if key
)


def _sample(value: Any) -> Any:
    """The value with each object cut to its known fields and first `_SAMPLE` other keys: each
    problem it has is one the whole has, and it has one wherever the whole has some (an object's
    unknown keys are each a problem, and its first are kept). Lists are kept whole: the models'
    lists are at most 20 long but spiffs, and a long list of spiffs is checked only up to 500 past
    its first bad one (`PlanRules`)."""
    if type(value) is dict:
        kept, others = {}, 0
        for key, item in value.items():
            if key in _FIELDS or others < _SAMPLE:
                others += key not in _FIELDS
                kept[key] = _sample(item)
        return kept
    if type(value) is list:
        return [_sample(item) for item in value]
    return value


def _value_problems(validate: Callable[[Any], Any], data: Any, error: ValidationError, prefix: str) -> list[Problem]:
    """The problems of an event's values; past `MAX_PROBLEMS`, those of a sample of the event
    (pydantic makes every error a Python object at once: about 3 µs each), and their count."""
    total = error.error_count()
    if total <= MAX_PROBLEMS:
        return _pydantic_problems(error, prefix)
    try:
        validate(_sample(data))
        named: list[Problem] = []
    except ValidationError as sampled:
        named = _pydantic_problems(sampled, prefix)[:MAX_PROBLEMS]
    return [*named, Problem(prefix, f"{total:,} problems found; {len(named):,} of them are named")]


def unexpected_fields(keys: Sequence[Any]) -> list[Problem]:
    """Each unexpected key, up to `MAX_PROBLEMS` of them, then how many there were: a 16 MiB body
    of keys would otherwise answer a list of a million (decision 123)."""
    problems = [Problem(str(key), "unexpected field") for key in keys[:MAX_PROBLEMS]]
    if len(keys) > MAX_PROBLEMS:
        problems.append(Problem("", f"{len(keys):,} unexpected fields; {MAX_PROBLEMS:,} of them are named"))
    return problems


def _pydantic_problems(error: ValidationError, prefix: str) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if message.startswith("@"):  # a rule across fields names the field it is about
            field, message = message[1:].split(": ", 1)
            path = f"{path}.{field}" if path else field
        problems.append(Problem(f"{prefix}.{path}" if path else prefix, message))
    return problems


def parse_envelope(obj: Any) -> Envelope | list[Problem]:
    """Shape and value checks of one envelope, before any reference is looked up."""
    if type(obj) is dict and len(obj) == 3:  # the usual envelope, checked with fewer steps
        event_id, type_, data = obj.get("event_id"), obj.get("type"), obj.get("data")
        validate = _VALIDATORS.get(type_) if type(type_) is str else None
        if validate is not None and type(data) is dict and type(event_id) is str and is_id(event_id):
            try:
                event = validate(data)
            except ValidationError as error:
                return _value_problems(validate, data, error, "data")
            return Envelope(event_id, type_, data, event)  # type: ignore[arg-type]
    if not isinstance(obj, dict):
        return [Problem("", "an event must be a JSON object with event_id, type and data")]
    problems = [Problem(key, "field required") for key in _ENVELOPE_KEYS if key not in obj]
    problems += unexpected_fields([key for key in obj if key not in _ENVELOPE_KEYS])
    if "event_id" in obj:
        try:
            parse_id(obj["event_id"])
        except ValueError as error:
            problems.append(Problem("event_id", str(error)))
    type_ = obj.get("type")
    model = None
    if "type" in obj:
        if not isinstance(type_, str) or type_ not in ev.EVENT_TYPES:
            problems.append(Problem("type", f"unknown event type; one of {', '.join(ev.EVENT_TYPES)}"))
        else:
            model = ev.EVENT_TYPES[type_]
    data = obj.get("data")
    if "data" in obj and not isinstance(data, dict):
        problems.append(Problem("data", "must be a JSON object"))
    valid: ev.EventData | None = None
    if model is not None and isinstance(data, dict):  # its problems too, beside the envelope's
        try:
            valid = model.model_validate(data)
        except ValidationError as error:
            problems += _value_problems(model.model_validate, data, error, "data")
    if problems:
        return problems
    assert valid is not None and isinstance(data, dict)
    return Envelope(obj["event_id"], type_, data, valid)  # type: ignore[arg-type]


@immutable
class DealRef:
    booked_on: date
    cancelled: bool = False


@functools.lru_cache(maxsize=8192)
def _deal_ref(booked_on: date, cancelled: bool = False) -> DealRef:
    """One shared reference per day and state: the index holds one per deal of the ledger."""
    return DealRef(booked_on, cancelled)


_LAYERS = ("participants", "plans", "deals", "payments", "adjustments", "disputes", "closed", "last_closed")


class _Layers(ChainMap[Any, Any]):
    """A flat chain of an overlay's writes over its parents' maps, with a loop for `in` (the hot path)."""

    def __contains__(self, key: object) -> bool:
        for mapping in self.maps:  # noqa: SIM110 - a generator costs twice as much here
            if key in mapping:
                return True
        return False


class ReferenceIndex:
    """What exists in the ledger, for reference checks. Mutated only by `apply`."""

    def __init__(self, parent: ReferenceIndex | None = None) -> None:
        def layer(name: str) -> MutableMapping[Any, Any]:
            if parent is None:
                return {}
            below = getattr(parent, name)
            return _Layers({}, *(below.maps if isinstance(below, ChainMap) else [below]))

        self.participants: MutableMapping[str, date] = layer("participants")
        self.plans: MutableMapping[str, int] = layer("plans")
        self.deals: MutableMapping[str, DealRef] = layer("deals")
        self.payments: MutableMapping[str, bool] = layer("payments")  # id -> reversed
        self.adjustments: MutableMapping[str, bool] = layer("adjustments")
        self.disputes: MutableMapping[str, bool] = layer("disputes")  # id -> open
        self.closed: MutableMapping[str, bool] = layer("closed")
        self.last_closed: MutableMapping[str, str] = layer("last_closed")  # length -> period

    def overlay(self) -> ReferenceIndex:
        """A scratch copy for checking a batch: writes stay in the overlay."""
        return ReferenceIndex(self)

    def merge_into_parent(self) -> None:
        """Keep an overlay's writes: move them into the index it was made from."""
        for name in _LAYERS:
            layer = getattr(self, name)
            assert isinstance(layer, ChainMap) and len(layer.maps) >= 2
            layer.maps[1].update(layer.maps[0])
            layer.maps[0].clear()

    def apply(self, event: ev.EventData) -> None:
        match event:
            case ev.DealBooked():
                self.deals[event.deal_id] = _deal_ref(event.booked_on)
            case ev.PaymentReceived():
                self.payments[event.payment_id] = False
            case ev.ParticipantRegistered():
                self.participants[event.participant_id] = event.start_date
            case ev.PlanPublished():
                self.plans[event.plan_id] = self.plans.get(event.plan_id, 0) + 1
            case ev.DealCancelled():
                self.deals[event.deal_id] = _deal_ref(self.deals[event.deal_id].booked_on, True)
            case ev.PaymentReversed():
                self.payments[event.payment_id] = True
            case ev.AdjustmentRecorded():
                self.adjustments[event.adjustment_id] = True
            case ev.PeriodClosed():
                self.closed[event.period] = True
                self.last_closed[period_length(event.period)] = event.period
            case ev.DisputeOpened():
                self.disputes[event.dispute_id] = True
            case ev.DisputeResolved():
                self.disputes[event.dispute_id] = False
            case _:
                pass


#: A valid value for each required field of the events, standing in for one that failed its own
#: checks while the event's other fields are checked against the ledger (`references_beside`).
_STAND_INS: dict[str, Any] = {
    **dict.fromkeys(
        ("participant_id", "team_id", "plan_id", "deal_id", "payment_id", "adjustment_id", "dispute_id"), "x"
    ),
    **dict.fromkeys(("name", "reason", "note"), "x"),
    **dict.fromkeys(
        ("start_date", "effective_date", "effective_from", "booked_on", "amended_on", "cancelled_on",
         "received_on", "reversed_on"),
        "2000-01-01",
    ),
    "period": "2000-01",
    "amount": "1",
    "credits": [{"participant_id": "x", "share": "1"}],
    "resolution": "upheld",
    "rules": {
        "period": "month", "basis": "booking", "tier_method": "marginal", "tiers": [{"from": "0", "rate": "0"}],
        "cap": None, "spiffs": [], "clawback_days": None, "override_rate": "0",
    },
}


#: The ledger's rules that judge one field by what another names (the participant's start date,
#: the deal's booking day): with the other stood in for, they would judge it by someone else's.
#: A new rule of that kind in `check_references` must be listed here.
_JUDGED_BY = {"effective_date": "participant_id", "cancelled_on": "deal_id"}


def references_beside(obj: Any, refs: ReferenceIndex, currency: str) -> list[Problem]:
    """The ledger's rules for the fields of an invalid event that passed their own checks: §3's
    422 "names each problem", so an unknown reference is named beside a bad value. The data's
    fields that failed (and extra ones) are stood in for by valid values, or left out if optional,
    and what the rules find about them, or judge by them, is dropped. If the event still does not
    validate (a rule across its fields failed), its own problems are all that is named."""
    data = obj.get("data") if type(obj) is dict else None
    model = ev.EVENT_TYPES.get(obj["type"]) if type(data) is dict and type(obj.get("type")) is str else None
    if model is None:
        return []
    assert isinstance(data, dict)
    try:
        model.model_validate(data)
        failed: set[str] = set()
    except ValidationError as error:
        if error.error_count() > MAX_PROBLEMS:  # named in part already (`_value_problems`)
            return []
        fields = [p.field for p in _pydantic_problems(error, "data")]
        if "data" in fields:  # a rule of the whole event, named on none of its fields
            return []
        failed = {field.split(".")[1] for field in fields}
    stood_in = {key: value for key, value in data.items() if key not in failed}
    for name in failed:
        field = model.model_fields.get(name)
        if field is not None and field.is_required():
            stood_in[name] = currency if name == "currency" else copy.deepcopy(_STAND_INS[name])
    try:
        event = model.model_validate(stood_in)
    except ValidationError:
        return []
    return [
        p for p in check_references(event, refs, currency)
        if (name := p.field.split(".")[1]) not in failed and _JUDGED_BY.get(name) not in failed
    ]


def check_references(event: ev.EventData, refs: ReferenceIndex, currency: str) -> list[Problem]:
    """The rules of §3 that need the ledger. An empty list means the event may be appended."""
    # Deals, payments and targets that break no rule, as one test each: most of a bulk import.
    # Anything else, and any of them that breaks a rule, goes through the rules below, which name
    # the problems. A rule added below for one of these types must be added to its test here too.
    if type(event) is ev.PaymentReceived:
        if event.payment_id not in refs.payments and event.deal_id in refs.deals:
            return []
    elif type(event) is ev.DealBooked:
        participants = refs.participants
        if (
            event.deal_id not in refs.deals
            and event.currency == currency
            and all(credit.participant_id in participants for credit in event.credits)
        ):
            return []
    elif type(event) is ev.TargetSet and event.participant_id in refs.participants:
        return []
    problems: list[Problem] = []

    def need(condition: bool, field: str, message: str, *values: object, conflict: bool = False) -> None:
        # The message is a template, filled only when the rule fails: almost every event passes.
        if not condition:
            problems.append(Problem(f"data.{field}", message.format(*values), conflict=conflict))

    def registered(field: str, participant_id: str | None) -> None:
        if participant_id is not None and participant_id not in refs.participants:
            problems.append(Problem(f"data.{field}", f"unknown participant '{participant_id}'"))

    match event:
        case ev.DealBooked():  # these two cases' rules are also tested at once above
            need(event.deal_id not in refs.deals, "deal_id", "deal '{}' is already booked", event.deal_id)
            need(event.currency == currency, "currency", "must be the ledger's currency '{}'", currency)
            for i, credit in enumerate(event.credits):
                if credit.participant_id not in refs.participants:  # before naming the field
                    registered(f"credits.{i}.participant_id", credit.participant_id)
        case ev.PaymentReceived():
            need(
                event.payment_id not in refs.payments,
                "payment_id",
                "payment '{}' is already received", event.payment_id,
            )
            need(event.deal_id in refs.deals, "deal_id", "unknown deal '{}'", event.deal_id)
        case ev.ParticipantRegistered():
            need(
                event.participant_id not in refs.participants,
                "participant_id",
                "participant '{}' is already registered", event.participant_id,
            )
            registered("manager_id", event.manager_id)
        case ev.ParticipantTransferred():
            registered("participant_id", event.participant_id)
            registered("manager_id", event.manager_id)
            start = refs.participants.get(event.participant_id)  # judged by another field: see _JUDGED_BY
            if start is not None:
                need(
                    event.effective_date >= start,
                    "effective_date",
                    "is before the participant's start_date {}", start.isoformat(),
                )
        case ev.PlanAssigned():
            registered("participant_id", event.participant_id)
            need(event.plan_id in refs.plans, "plan_id", "plan '{}' was never published", event.plan_id)
        case ev.TargetSet():
            registered("participant_id", event.participant_id)
        case ev.DealAmended() | ev.DealCancelled():
            deal = refs.deals.get(event.deal_id)
            need(deal is not None, "deal_id", "unknown deal '{}'", event.deal_id)
            if deal is not None:
                need(not deal.cancelled, "deal_id", "deal '{}' is cancelled", event.deal_id)
                if isinstance(event, ev.DealCancelled):  # judged by another field: see _JUDGED_BY
                    need(
                        event.cancelled_on >= deal.booked_on,
                        "cancelled_on",
                        "is before the deal's booked_on {}", deal.booked_on.isoformat(),
                    )
        case ev.PaymentReversed():
            reversed_ = refs.payments.get(event.payment_id)
            need(reversed_ is not None, "payment_id", "unknown payment '{}'", event.payment_id)
            need(reversed_ is not True, "payment_id", "payment '{}' is already reversed", event.payment_id)
        case ev.AdjustmentRecorded():
            need(
                event.adjustment_id not in refs.adjustments,
                "adjustment_id",
                "adjustment '{}' already exists", event.adjustment_id,
            )
            registered("participant_id", event.participant_id)
            need(event.period not in refs.closed, "period", "period {} is closed", event.period)
        case ev.PeriodClosed():
            last = refs.last_closed.get(period_length(event.period))
            if last is not None:
                expected = next_period(last)
                need(
                    event.period == expected,
                    "period",
                    "periods close in calendar order: the next to close is {}", expected,
                    conflict=True,
                )
        case ev.DisputeOpened():
            need(
                event.dispute_id not in refs.disputes,
                "dispute_id",
                "dispute '{}' already exists", event.dispute_id,
            )
            registered("participant_id", event.participant_id)
            if event.deal_id is not None:
                need(event.deal_id in refs.deals, "deal_id", "unknown deal '{}'", event.deal_id)
        case ev.DisputeResolved():
            state = refs.disputes.get(event.dispute_id)
            need(state is not None, "dispute_id", "unknown dispute '{}'", event.dispute_id)
            need(state is not False, "dispute_id", "dispute '{}' is already resolved", event.dispute_id)
        case _:
            pass
    return problems
