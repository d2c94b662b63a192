"""Statement lines: the payable (or earned) amounts, each with the facts that explain it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import chain, compress
from operator import attrgetter, not_
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


@dataclass(slots=True, unsafe_hash=True)
class TierPortion:
    """The part of a credit that fell in one tier (marginal method). Never changed once made; not
    frozen for the same reason as `Line`."""

    tier: int
    from_: Decimal
    rate: Decimal
    lower: Decimal
    upper: Decimal | None
    portion: Decimal

    def body(self) -> dict[str, Any]:
        """Money shown to cents (the contract's rule); the exact figures are in `Line.explain`."""
        return {
            "tier": self.tier,
            "from": exact_str(self.from_),
            "rate": exact_str(self.rate),
            "range_from": money_str(self.lower),
            "range_to": None if self.upper is None else money_str(self.upper),
            "portion": money_str(self.portion),
            "amount": money_str(self.portion * self.rate),
        }

    def explain(self) -> str:
        upper = "no limit" if self.upper is None else exact_str(self.upper)
        return (
            f"tier {self.tier} (from {exact_str(self.from_)} of target, amounts {exact_str(self.lower)} to {upper}): "
            f"{exact_str(self.portion)} x {exact_str(self.rate)} = {exact_str(self.portion * self.rate)}"
        )


@dataclass(slots=True, eq=True)
class Line:
    """One statement line. Never changed once made (lines are memoised and compared as sets); not
    a frozen dataclass only because a frozen ``__init__`` costs three times as much, and a
    what-if over a thousand participants makes hundreds of thousands of lines."""

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

    def __hash__(self) -> int:
        """Of the few fields that tell lines apart (equal lines agree on them): hashing every field,
        tier breakdowns and Decimals included, took a tenth of a what-if's time."""
        return hash(_IDENTITY(self))

    @property
    def order(self) -> tuple[Any, ...]:
        """Where a statement shows the line: by kind (`_ORDER`), then `sort_key`. The definition the
        tests hold statements to; `Engine._own` builds it kind by kind, without this key
        (decision 106)."""
        return (_ORDER[self.kind], *self.sort_key)

    def body(self) -> dict[str, Any]:
        """The line as the API shows it: only the facts that apply to its kind."""
        out: dict[str, Any] = {"kind": self.kind, "amount": money_str(self.amount)}
        # In this order, each only if the line has it, tested one by one: a dict of them all,
        # filtered, took three times as long for a spiff line (a what-if renders tens of thousands).
        if self.deal_id is not None:
            out["deal_id"] = self.deal_id
        if self.payment_id is not None:
            out["payment_id"] = self.payment_id
        if self.report_id is not None:
            out["participant_id"] = self.report_id
        if self.credit is not None:
            out["credit"] = exact_str(self.credit)
        if self.share is not None:
            out["share"] = exact_str(self.share)
        if self.plan_id is not None:
            out["plan_id"] = self.plan_id
        if self.plan_version is not None:
            out["plan_version"] = self.plan_version
        if self.tier_method is not None:
            out["tier_method"] = self.tier_method
        if self.rate is not None:
            out["rate"] = exact_str(self.rate)
        if self.tiers is not None:
            out["tiers"] = [t.body() for t in self.tiers]
        if self.target is not None:
            out["target"] = money_str(self.target)
        if self.credited_before is not None:
            out["credited_before"] = money_str(self.credited_before)
        if self.for_period is not None:
            out["for_period"] = self.for_period
        if self.reason is not None:
            out["reason"] = self.reason
        out.update(self.details)
        out["event_ids"] = list(self.event_ids)
        return out

    def explain(self) -> list[str]:
        """The arithmetic of the line in exact figures, step by step, for a calculator."""
        details = dict(self.details)
        steps: list[str] = []
        if self.credit is not None and self.share is not None:
            steps.append(f"credit: deal amount x share {exact_str(self.share)} = {exact_str(self.credit)}")
        if self.tiers is not None:
            target = "none (every credit falls in the first tier)" if not self.target else exact_str(self.target)
            before = exact_str(self.credited_before) if self.credited_before is not None else "0"
            steps.append(f"target {target}; credits before this one in the period: {before}")
            steps += [portion.explain() for portion in self.tiers]
        elif self.kind in ("commission", "earned") and self.rate is not None and self.credit is not None:
            steps.append(
                f"period attainment {details.get('attainment', 'null')}: tier {details.get('tier')} applies to "
                f"the whole credit: {exact_str(self.credit)} x {exact_str(self.rate)}"
            )
        elif self.kind == "override" and self.rate is not None and self.credit is not None:
            steps.append(f"override: {exact_str(self.credit)} x {exact_str(self.rate)}")
        if self.kind == "release":
            steps.append(
                f"released to date = round(earned {details['earned']} x paid so far / deal amount "
                f"{details['deal_amount']}); this line is the change this payment or reversal made"
            )
        if self.kind == "cap":
            steps.append(
                f"commission and override lines add up to {details['capped_total']}; the cap is {details['cap']}"
            )
        if self.kind == "adjustment":
            steps.append(f"change of {self.for_period}'s own total since the latest close, paid in this period")
        if self.exact is not None:
            steps.append(f"exact amount {exact_str(self.exact)}")
        steps.append(f"rounded half-up to cents: {money_str(self.amount)}")
        return steps


def same_lines(a: Sequence[Line], b: Sequence[Line]) -> bool:
    """The same line objects in the same order: memoised lines are shared, never copied, so a view
    that reads the same memo entries holds the same objects, and no field needs comparing."""
    return a is b or (len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True)))


#: The fields `Line.__hash__` hashes, as a tuple made in C.
_IDENTITY = attrgetter("kind", "period", "sort_key", "event_ids")
#: A line's place among the lines of its kind, in C.
SORT_KEY = attrgetter("sort_key")
#: The events a line names, in C.
EVENT_IDS = attrgetter("event_ids")


def payable_lines(lines: Sequence[Line]) -> tuple[Line, ...]:
    """Every line but the earned ones: a collection-basis credit is paid by its release lines, not
    by the line that says what it earned. The kind is tested inline, in one comprehension: a
    manager's views hold tens of thousands of lines."""
    return tuple([line for line in lines if line.kind != "earned"])


def payable_total(lines: Sequence[Line]) -> Decimal:
    return sum([line.amount for line in lines if line.kind != "earned"], Decimal(0))


def changed_event_ids(a: Sequence[Line], b: Sequence[Line]) -> list[str]:
    """The event ids of the lines in one of `a` and `b` and not in the other, sorted: what an
    adjustment line names. As `set(a) ^ set(b)` would find them, with each line's identifying
    fields (`Line.__hash__`'s) taken as a tuple in C rather than hashed in Python: lines that
    differ in them differ, and only lines that agree in them are compared whole.

    Line objects both sides hold are left out first, all in C: a manager's period before and after
    a late deal shares the memoised override lines of every report the deal did not touch, and
    keying each of them took most of the comparison. Sound unless a line of one side's own equals
    one of them (the sets would count the two once); then the comparison is made whole.

    Then only the lines whose tuple of event ids both sides have are keyed (equal lines name the
    same events, so a line whose tuple is on one side only equals no line of the other): a what-if's
    new plan version names itself on every line it recomputes, so none of those is keyed, nor the
    lines of a period's late deals (decision 147)."""
    shared = set(map(id, a)).intersection(map(id, b))
    if shared:
        is_shared = shared.__contains__
        a_own = list(compress(a, map(not_, map(is_shared, map(id, a)))))
        b_own = list(compress(b, map(not_, map(is_shared, map(id, b)))))
        if not a_own and not b_own:
            return []
        if _apart(a_own + b_own, list(compress(a, map(is_shared, map(id, a))))):
            a, b = a_own, b_own
    ids_a, ids_b = set(map(EVENT_IDS, a)), set(map(EVENT_IDS, b))
    common = ids_a & ids_b
    event_ids = set(chain.from_iterable(ids_a ^ ids_b))
    if not common:
        return sorted(event_ids)
    if len(common) < len(ids_a) or len(common) < len(ids_b):
        in_common = common.__contains__
        a = list(compress(a, map(in_common, map(EVENT_IDS, a))))
        b = list(compress(b, map(in_common, map(EVENT_IDS, b))))
    mine, theirs = dict(zip(map(_IDENTITY, a), a, strict=True)), dict(zip(map(_IDENTITY, b), b, strict=True))
    if len(mine) < len(a) or len(theirs) < len(b):  # lines alike in those fields on one side
        event_ids.update(event_id for line in set(a) ^ set(b) for event_id in line.event_ids)
        return sorted(event_ids)
    event_ids.update(event_id for key in mine.keys() ^ theirs.keys() for event_id in key[3])
    for key in mine.keys() & theirs.keys():
        line, other = mine[key], theirs[key]
        if line is not other and line != other:
            event_ids.update(key[3])
    return sorted(event_ids)


def _apart(own: list[Line], shared: list[Line]) -> bool:
    """Whether no line of `own` equals one of `shared`: equal lines agree in their sort keys first
    (cheaper to hash), then in all their identifying fields."""
    keys = set(map(SORT_KEY, own))
    if keys.isdisjoint(map(SORT_KEY, shared)):
        return True
    return set(map(_IDENTITY, own)).isdisjoint(map(_IDENTITY, shared))
