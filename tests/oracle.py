"""A deliberately simple reference implementation of CONTRACT §5 items 1–9 and 11.

Written from the contract text alone (it shares no code with `projections/`), to
check the statement engine independently. Period closes (§5.10) are out of scope:
a ledger fed to the oracle must not contain `PeriodClosed`. Disputes are ignored.

It takes raw envelopes (dicts with `event_id`, `type`, `data`) in position order,
assumed valid, and answers for (participant, period):
`credited`, `target`, `attainment` (strings as the API shows them), `total`, and
the lines as (kind, amount) pairs plus a few facts (deal, payment, report).

Readings chosen where the contract leaves room (each documented where it is used):
- a cancelled credit with no plan on `booked_on` has no `clawback_days`, which is
  read as null: the cancellation always takes it back;
- §5.8's P is the *unclamped* running sum of payments minus reversals, clamped to
  [0, A] only when the released figure is computed;
- §5.7's cap is that of the participant's plan version in force on the period's
  last day, whatever that plan's period length;
- a credit without a plan produces no commission line (not a zero line).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

# High precision: no product or quotient of contract values is ever rounded here.
_CTX = Context(prec=100)
CENT = Decimal("0.01")


def mul(a: Decimal, b: Decimal) -> Decimal:
    return _CTX.multiply(a, b)


def div(a: Decimal, b: Decimal) -> Decimal:
    return _CTX.divide(a, b)


def add(a: Decimal, b: Decimal) -> Decimal:
    return _CTX.add(a, b)


def sub(a: Decimal, b: Decimal) -> Decimal:
    return _CTX.subtract(a, b)


def cents(value: Decimal) -> Decimal:
    """ROUND_HALF_UP to cents."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP, context=_CTX)


def money(value: Decimal) -> str:
    return f"{cents(value):f}"


def day(text: str) -> date:
    return date.fromisoformat(text)


def period_of(d: date, length: str) -> str:
    if length == "quarter":
        return f"{d.year:04d}-Q{(d.month - 1) // 3 + 1}"
    return f"{d.year:04d}-{d.month:02d}"


def last_day(period: str) -> date:
    year = int(period[:4])
    last_month = int(period[6]) * 3 if "Q" in period else int(period[5:7])
    if last_month == 12:
        return date(year, 12, 31)
    return date(year, last_month + 1, 1) - timedelta(days=1)


# --- the ledger's facts -------------------------------------------------------------------


@dataclass
class Rules:
    period: str
    basis: str
    tier_method: str
    tiers: list[tuple[Decimal, Decimal]]  # (from, rate)
    cap: Decimal | None
    spiffs: dict[str, Decimal]
    clawback_days: int | None
    override_rate: Decimal


@dataclass
class Version:
    position: int
    number: int
    effective_from: date
    rules: Rules


@dataclass
class Assignment:
    position: int
    participant_id: str
    plan_id: str
    effective_from: date
    effective_to: date | None


@dataclass
class Deal:
    position: int
    deal_id: str
    booked_on: date
    amount: Decimal
    product: str | None
    credits: list[tuple[str, Decimal]]
    cancelled_on: date | None = None


@dataclass
class Cash:
    """A payment (+amount) or a reversal (-amount) of one deal, in position order."""

    position: int
    deal_id: str
    payment_id: str
    amount: Decimal
    on: date


@dataclass
class Plan:
    """A participant's plan on a date (§5.1)."""

    plan_id: str
    version: int
    rules: Rules


@dataclass
class Credit:
    deal: Deal
    participant_id: str
    share: Decimal
    amount: Decimal  # amount × share, exact
    plan: Plan | None
    period: str


@dataclass
class OLine:
    kind: str
    amount: Decimal
    deal_id: str | None = None
    payment_id: str | None = None
    report_id: str | None = None


@dataclass
class OStatement:
    participant_id: str
    period: str
    credited: Decimal
    target: Decimal | None
    lines: list[OLine] = field(default_factory=list)
    no_plan_credits: int = 0

    @property
    def attainment(self) -> str | None:
        if self.target is None or self.target == 0:
            return None
        return f"{div(self.credited, self.target).quantize(Decimal('0.0001'), ROUND_HALF_UP, context=_CTX):f}"

    @property
    def total(self) -> Decimal:
        result = Decimal(0)
        for line in self.lines:
            if line.kind != "earned":
                result = add(result, line.amount)
        return result

    def summary(self) -> dict[str, Any]:
        """The figures compared with the engine, formatted as the API shows them."""
        return {
            "credited": money(self.credited),
            "target": None if self.target is None else money(self.target),
            "attainment": self.attainment,
            "total": money(self.total),
            "lines": sorted((line.kind, money(line.amount)) for line in self.lines),
        }

    def facts(self) -> list[tuple[str, str, str | None, str | None, str | None]]:
        """Each line as (kind, amount, deal, payment, report), sorted: a stricter comparison than `summary`."""
        return sorted(((line.kind, money(line.amount), line.deal_id, line.payment_id, line.report_id)
                       for line in self.lines), key=lambda f: tuple(x or "" for x in f))


def _rules(raw: dict[str, Any]) -> Rules:
    return Rules(
        period=raw["period"],
        basis=raw["basis"],
        tier_method=raw["tier_method"],
        tiers=[(Decimal(t["from"]), Decimal(t["rate"])) for t in raw["tiers"]],
        cap=None if raw["cap"] is None else Decimal(raw["cap"]),
        spiffs={s["product"]: Decimal(s["amount"]) for s in raw["spiffs"]},
        clawback_days=raw["clawback_days"],
        override_rate=Decimal(raw["override_rate"]),
    )


class Oracle:
    def __init__(self, envelopes: list[dict[str, Any]]) -> None:
        self.registered: dict[str, tuple[str | None, str]] = {}  # participant -> (manager, team)
        self.transfers: list[tuple[str, date, str | None, int, str]] = []  # (participant, date, manager, pos, team)
        self.versions: dict[str, list[Version]] = {}
        self.assignments: list[Assignment] = []
        self.targets: dict[tuple[str, str], Decimal] = {}
        self.deals: dict[str, Deal] = {}
        self.cash: list[Cash] = []
        self.adjustments: list[tuple[str, str, Decimal]] = []
        payments: dict[str, Cash] = {}
        for position, envelope in enumerate(envelopes, start=1):
            kind, d = envelope["type"], envelope["data"]
            if kind == "ParticipantRegistered":
                self.registered[d["participant_id"]] = (d.get("manager_id"), d["team_id"])
            elif kind == "ParticipantTransferred":
                self.transfers.append((d["participant_id"], day(d["effective_date"]), d.get("manager_id"), position,
                                       d["team_id"]))
            elif kind == "PlanPublished":
                versions = self.versions.setdefault(d["plan_id"], [])
                versions.append(Version(position, len(versions) + 1, day(d["effective_from"]), _rules(d["rules"])))
            elif kind == "PlanAssigned":
                to = d.get("effective_to")
                self.assignments.append(Assignment(
                    position, d["participant_id"], d["plan_id"], day(d["effective_from"]),
                    None if to is None else day(to),
                ))
            elif kind == "TargetSet":
                self.targets[(d["participant_id"], d["period"])] = Decimal(d["amount"])
            elif kind == "DealBooked":
                self.deals[d["deal_id"]] = Deal(
                    position, d["deal_id"], day(d["booked_on"]), Decimal(d["amount"]), d.get("product"),
                    [(c["participant_id"], Decimal(c["share"])) for c in d["credits"]],
                )
            elif kind == "DealAmended":
                self.deals[d["deal_id"]].amount = Decimal(d["amount"])
            elif kind == "DealCancelled":
                self.deals[d["deal_id"]].cancelled_on = day(d["cancelled_on"])
            elif kind == "PaymentReceived":
                cash = Cash(position, d["deal_id"], d["payment_id"], Decimal(d["amount"]), day(d["received_on"]))
                payments[d["payment_id"]] = cash
                self.cash.append(cash)
            elif kind == "PaymentReversed":
                paid = payments[d["payment_id"]]
                self.cash.append(Cash(position, paid.deal_id, paid.payment_id, -paid.amount, day(d["reversed_on"])))
            elif kind == "AdjustmentRecorded":
                self.adjustments.append((d["participant_id"], d["period"], Decimal(d["amount"])))
            elif kind == "PeriodClosed":
                raise ValueError("the oracle does not model period closes (§5.10)")
        self.credits = self._credits()
        self._commission_cache: dict[tuple[str, str], dict[tuple[str, str], Decimal]] = {}

    # --- §5.1 -------------------------------------------------------------------------------

    def plan_on(self, participant_id: str, on: date) -> Plan | None:
        covering = [
            a for a in self.assignments
            if a.participant_id == participant_id and a.effective_from <= on
            and (a.effective_to is None or on <= a.effective_to)
        ]
        if not covering:
            return None
        assignment = max(covering, key=lambda a: a.position)  # the latest appended
        in_force = [v for v in self.versions.get(assignment.plan_id, []) if v.effective_from <= on]
        if not in_force:
            return None  # a plan with no version in force counts as no plan
        version = max(in_force, key=lambda v: v.position)  # the latest by position
        return Plan(assignment.plan_id, version.number, version.rules)

    def manager_on(self, participant_id: str, on: date) -> str | None:
        moves = [t for t in self.transfers if t[0] == participant_id and t[1] <= on]
        if moves:
            return max(moves, key=lambda t: (t[1], t[3]))[2]
        return self.registered[participant_id][0]

    def team_on(self, participant_id: str, on: date) -> str:
        moves = [t for t in self.transfers if t[0] == participant_id and t[1] <= on]
        if moves:
            return max(moves, key=lambda t: (t[1], t[3]))[4]
        return self.registered[participant_id][1]

    # --- §5.2 -------------------------------------------------------------------------------

    def _credits(self) -> list[Credit]:
        out = []
        for deal in sorted(self.deals.values(), key=lambda d: d.position):
            for participant_id, share in deal.credits:
                plan = self.plan_on(participant_id, deal.booked_on)
                if deal.cancelled_on is not None:
                    days = (deal.cancelled_on - deal.booked_on).days
                    # No plan: no clawback_days, read as null (always taken back).
                    window = None if plan is None else plan.rules.clawback_days
                    if window is None or window >= days:
                        continue  # not live
                length = "month" if plan is None else plan.rules.period
                out.append(Credit(deal, participant_id, share, mul(deal.amount, share), plan,
                                  period_of(deal.booked_on, length)))
        return out

    def period_credits(self, participant_id: str, period: str) -> list[Credit]:
        mine = [c for c in self.credits if c.participant_id == participant_id and c.period == period]
        return sorted(mine, key=lambda c: (c.deal.booked_on, c.deal.position))

    # --- §5.3–5.4 ---------------------------------------------------------------------------

    def commissions(self, participant_id: str, period: str) -> dict[tuple[str, str], Decimal]:
        """Rounded commission (or earned) amount per credit (deal_id, participant) of the period."""
        key = (participant_id, period)
        if key in self._commission_cache:
            return self._commission_cache[key]
        credits = self.period_credits(participant_id, period)
        credited = Decimal(0)
        for c in credits:
            credited = add(credited, c.amount)
        target = self.targets.get(key)
        if target is not None and target == 0:
            target = None
        attainment = None if target is None else div(credited, target)
        out: dict[tuple[str, str], Decimal] = {}
        before = Decimal(0)
        for c in credits:
            start, end = before, add(before, c.amount)
            before = end
            if c.plan is None:
                continue
            tiers = c.plan.rules.tiers
            if c.plan.rules.tier_method == "marginal":
                if target is None:
                    exact = mul(c.amount, tiers[0][1])
                else:
                    exact = Decimal(0)
                    for i, (lower_from, rate) in enumerate(tiers):
                        low = mul(lower_from, target)
                        high = mul(tiers[i + 1][0], target) if i + 1 < len(tiers) else None
                        top = end if high is None else min(high, end)
                        overlap = sub(top, max(low, start))
                        if overlap > 0:
                            exact = add(exact, mul(overlap, rate))
            else:
                rate = tiers[0][1]
                if attainment is not None:
                    for lower_from, tier_rate in tiers:
                        if lower_from <= attainment:
                            rate = tier_rate
                exact = mul(c.amount, rate)
            out[(c.deal.deal_id, c.participant_id)] = cents(exact)
        self._commission_cache[key] = out
        return out

    # --- the statement ------------------------------------------------------------------------

    def statement(self, participant_id: str, period: str) -> OStatement:
        credits = self.period_credits(participant_id, period)
        credited = Decimal(0)
        for c in credits:
            credited = add(credited, c.amount)
        st = OStatement(participant_id, period, credited, self.targets.get((participant_id, period)))
        commissions = self.commissions(participant_id, period)
        for c in credits:
            if c.plan is None:
                st.no_plan_credits += 1
                continue
            kind = "commission" if c.plan.rules.basis == "booking" else "earned"
            st.lines.append(OLine(kind, commissions[(c.deal.deal_id, participant_id)], c.deal.deal_id))
            # §5.5 spiffs
            spiff = c.plan.rules.spiffs.get(c.deal.product) if c.deal.product is not None else None
            if spiff is not None:
                st.lines.append(OLine("spiff", cents(mul(spiff, c.share)), c.deal.deal_id))
        # §5.8 releases of this participant's collection credits, whatever their booking period
        for c in self.credits:
            if c.participant_id != participant_id or c.plan is None or c.plan.rules.basis != "collection":
                continue
            earned = self.commissions(participant_id, c.period)[(c.deal.deal_id, participant_id)]
            amount = c.deal.amount
            running = Decimal(0)
            released = Decimal(0)
            for cash in self.cash:
                if cash.deal_id != c.deal.deal_id:
                    continue
                running = add(running, cash.amount)
                paid = min(max(running, Decimal(0)), amount)
                now = cents(div(mul(earned, paid), amount))
                change = sub(now, released)
                released = now
                if change != 0 and period_of(cash.on, c.plan.rules.period) == period:
                    st.lines.append(OLine("release", change, c.deal.deal_id, cash.payment_id))
        # §5.6 overrides for the credits of reports
        for c in self.credits:
            on = c.deal.booked_on
            if self.manager_on(c.participant_id, on) != participant_id:
                continue
            plan = self.plan_on(participant_id, on)
            if plan is None or plan.rules.override_rate <= 0:
                continue
            if period_of(on, plan.rules.period) != period:
                continue
            st.lines.append(OLine("override", cents(mul(c.amount, plan.rules.override_rate)), c.deal.deal_id,
                                  report_id=c.participant_id))
        # §5.7 cap
        plan = self.plan_on(participant_id, last_day(period))
        if plan is not None and plan.rules.cap is not None:
            capped = Decimal(0)
            for line in st.lines:
                if line.kind in ("commission", "override"):
                    capped = add(capped, line.amount)
            if capped > plan.rules.cap:
                st.lines.append(OLine("cap", sub(plan.rules.cap, capped)))
        # §5.9 manual lines
        for who, when, amount in self.adjustments:
            if who == participant_id and when == period:
                st.lines.append(OLine("manual", amount))
        return st

    # --- §6 attainment rows and rankings --------------------------------------------------------

    def rows(self, period: str) -> list[dict[str, Any]]:
        """One row per registered participant, team as of the period's last day, in participant order."""
        out = []
        for participant_id in sorted(self.registered):
            st = self.statement(participant_id, period)
            out.append({"participant_id": participant_id, "team_id": self.team_on(participant_id, last_day(period)),
                        "target": None if st.target is None else money(st.target), "credited": money(st.credited),
                        "attainment": st.attainment})
        return out

    def ranking(self, period: str) -> list[tuple[int, str]]:
        """(rank, participant): exact attainment desc (nulls last), credited desc, id asc; competition ranks."""
        keyed = []
        for participant_id in self.registered:
            credited = sum((c.amount for c in self.period_credits(participant_id, period)), Decimal(0))
            target = self.targets.get((participant_id, period))
            attainment = None if not target else div(credited, target)
            keyed.append((attainment, credited, participant_id))
        with_value = sorted((k for k in keyed if k[0] is not None), key=lambda k: (-k[0], -k[1], k[2]))
        without = sorted((k for k in keyed if k[0] is None), key=lambda k: (-k[1], k[2]))
        ordered = with_value + without
        out: list[tuple[int, str]] = []
        for i, (attainment, credited, participant_id) in enumerate(ordered):
            if i and (ordered[i - 1][0], ordered[i - 1][1]) == (attainment, credited):
                out.append((out[-1][0], participant_id))
            else:
                out.append((i + 1, participant_id))
        return out

    def periods_touched(self) -> set[str]:
        """Every month and quarter holding a date or naming a period of the ledger."""
        days: set[date] = set()
        periods: set[str] = set()
        for deal in self.deals.values():
            days.add(deal.booked_on)
        for cash in self.cash:
            days.add(cash.on)
        for _, period in self.targets:
            periods.add(period)
        for _, period, _ in self.adjustments:
            periods.add(period)
        for d in days:
            periods.add(period_of(d, "month"))
            periods.add(period_of(d, "quarter"))
        return periods
