"""Properties of closes over random ledgers (pure: events folded straight into books).

- For every closed statement, the as-of read at its close equals what is frozen.
- Nothing is paid twice and nothing is lost: over all periods, what the
  statements pay (frozen totals of closed periods, live totals of open ones)
  equals the recomputed own totals of all periods.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.appender import Sealed
from ledger.records import seal
from ledger.validation import ReferenceIndex, check_references, parse_envelope
from ledger.values import next_period, period_of
from projections.book import Book
from projections.lines import payable_total
from replay.asof import fold
from tests import test_properties as engine
from tests.support import rules

MONTHS = [f"2026-{m:02d}" for m in range(1, 7)]
QUARTERS = ["2026-Q1", "2026-Q2", "2026-Q3"]
PEOPLE = ["r1", "r2", "m1"]


def _logged(envelopes: list[dict[str, Any]]) -> list[Sealed]:
    refs = ReferenceIndex()
    out: list[Sealed] = []
    previous = None
    for envelope in envelopes:
        parsed = parse_envelope(envelope)
        assert not isinstance(parsed, list), parsed
        if check_references(parsed.event, refs, "USD"):
            continue  # drop events the random plan made invalid (e.g. cancelling twice)
        refs.apply(parsed.event)
        previous = seal(previous, len(out) + 1, envelope["event_id"], envelope["type"], envelope["data"],
                        datetime(2026, 1, 1, tzinfo=UTC))
        out.append(Sealed(previous, parsed.event))
    return out


@st.composite
def ledgers(draw: st.DrawFn) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []

    def add(type_: str, **data: Any) -> None:
        events.append({"event_id": f"e{len(events)}", "type": type_, "data": data})

    add("ParticipantRegistered", participant_id="m1", name="M", team_id="t", start_date="2020-01-01")
    for rep in ("r1", "r2"):
        add("ParticipantRegistered", participant_id=rep, name=rep, team_id="t", manager_id="m1",
            start_date="2020-01-01")
    tiers = draw(st.sampled_from([[("0", "0.05")], [("0", "0.04"), ("0.8", "0.08"), ("1.2", "0.12")]]))
    method = draw(st.sampled_from(["marginal", "retroactive"]))
    add("PlanPublished", plan_id="p", effective_from="2020-01-01",
        rules=rules(tiers, tier_method=method, clawback_days=draw(st.sampled_from([None, 20]))))
    add("PlanPublished", plan_id="c", effective_from="2020-01-01", rules=rules(tiers, basis="collection"))
    add("PlanPublished", plan_id="m", effective_from="2020-01-01", rules=rules([("0", "0")], override_rate="0.02"))
    add("PlanPublished", plan_id="q", effective_from="2020-01-01",
        rules=rules(tiers, period="quarter", tier_method=method, cap=draw(st.sampled_from([None, "400.00"]))))
    add("PlanPublished", plan_id="qc", effective_from="2020-01-01", rules=rules(tiers, period="quarter",
                                                                               basis="collection", tier_method=method))
    add("PlanAssigned", participant_id="r1", plan_id=draw(st.sampled_from(["p", "q"])), effective_from="2020-01-01")
    add("PlanAssigned", participant_id="r2", plan_id=draw(st.sampled_from(["c", "qc"])), effective_from="2020-01-01")
    quarters = draw(st.booleans())  # close quarters instead of months
    add("PlanAssigned", participant_id="m1", plan_id="m", effective_from="2020-01-01")
    closed: str | None = None
    deals = 0
    payments = 0
    for _ in range(draw(st.integers(5, 30))):
        action = draw(st.sampled_from(["deal", "deal", "deal", "cancel", "amend", "target", "pay", "reverse",
                                       "version", "close", "adjust", "transfer", "assign", "register"]))
        month = draw(st.sampled_from(MONTHS))
        day = f"{month}-{draw(st.integers(1, 28)):02d}"
        if action == "deal":
            deals += 1
            share = draw(st.sampled_from(["1", "0.5", "0.25"]))
            credits = [{"participant_id": draw(st.sampled_from(["r1", "r2"])), "share": share}]
            if draw(st.booleans()):  # split between r1 and r2, whose plans' bases may differ
                credits = [{"participant_id": "r1", "share": "0.5"}, {"participant_id": "r2", "share": "0.5"}]
            add("DealBooked", deal_id=f"k{deals}", booked_on=day, amount=f"{draw(st.integers(1, 5000))}.00",
                currency="USD", credits=credits)
        elif action == "cancel" and deals:
            add("DealCancelled", deal_id=f"k{draw(st.integers(1, deals))}", cancelled_on="2026-12-31"
                if draw(st.booleans()) else "2026-06-28")
        elif action == "amend" and deals:
            add("DealAmended", deal_id=f"k{draw(st.integers(1, deals))}", amount=f"{draw(st.integers(1, 9000))}.50",
                amended_on=day)
        elif action == "target":  # a quarter's too: quarterly plans' tiers need one (decision 135)
            add("TargetSet", participant_id=draw(st.sampled_from(PEOPLE)),
                period=draw(st.sampled_from([month, period_of(date.fromisoformat(day), "quarter")])),
                amount=f"{draw(st.integers(0, 8000))}.00")
        elif action == "pay" and deals:
            payments += 1
            add("PaymentReceived", payment_id=f"pay{payments}", deal_id=f"k{draw(st.integers(1, deals))}",
                amount=f"{draw(st.integers(1, 3000))}.00", received_on=day)
        elif action == "reverse" and payments:
            add("PaymentReversed", payment_id=f"pay{draw(st.integers(1, payments))}", reversed_on=day)
        elif action == "version":  # now and then of the other length (decision 135)
            flat = [("0", draw(st.sampled_from(["0.03", "0.06", "0.1"])))]
            add("PlanPublished", plan_id=draw(st.sampled_from(["p", "c"])), effective_from=day,
                rules=rules(draw(st.sampled_from([flat, tiers])), tier_method=draw(st.sampled_from(["marginal",
                            "retroactive"])), basis="collection" if draw(st.booleans()) else "booking",
                            period=draw(st.sampled_from(["month", "month", "quarter"]))))
        elif action == "close":
            first = QUARTERS[0] if quarters else MONTHS[0]
            closed = next_period(closed) if closed else first
            if closed in (QUARTERS[:2] if quarters else MONTHS):
                add("PeriodClosed", period=closed)
        elif action == "transfer":
            add("ParticipantTransferred", participant_id=draw(st.sampled_from(["r1", "r2"])), team_id="t",
                manager_id=draw(st.sampled_from(["m1", None])), effective_date=day)
        elif action == "assign":
            add("PlanAssigned", participant_id=draw(st.sampled_from(["r1", "r2"])),
                plan_id=draw(st.sampled_from(["p", "c", "q", "qc"])), effective_from=day)
        elif action == "register" and "r3" not in {e["data"].get("participant_id") for e in events}:
            add("ParticipantRegistered", participant_id="r3", name="r3", team_id="t", manager_id="m1",
                start_date="2020-01-01")
            add("PlanAssigned", participant_id="r3", plan_id="c", effective_from="2020-01-01")
            add("DealBooked", deal_id="r3-deal", booked_on=day, amount="700.00", currency="USD",
                credits=[{"participant_id": "r3", "share": "1"}])
        elif action == "adjust":
            add("AdjustmentRecorded", adjustment_id=f"a{len(events)}", participant_id=draw(st.sampled_from(PEOPLE)),
                period=month, amount=draw(st.sampled_from(["10.00", "-3.50"])), reason="adj")
    return events


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ledgers())
def test_as_of_close_equals_frozen_and_nothing_is_paid_twice(envelopes: list[dict[str, Any]]) -> None:
    entries = _logged(envelopes)
    head = fold(entries)
    for period, position in head.state.closed_at.items():
        at_close = fold(entries[:position])
        just_before = fold(entries[: position - 1])
        for participant in PEOPLE:
            frozen = head.statement(participant, period).body(0)
            assert at_close.statement(participant, period).body(0) | {"recomputed_total": None} == frozen | {
                "recomputed_total": None}
            before = just_before.statement(participant, period).body(0)
            for key in ("target", "credited", "attainment", "lines", "total", "warnings"):
                assert before[key] == frozen[key]
    for participant in PEOPLE:
        paid, own = _paid_and_own(head, participant)
        assert paid == own


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ledgers())
def test_adjustments_skip_only_closed_periods_nothing_could_change(envelopes: list[dict[str, Any]]) -> None:
    """The adjustment lines equal those of recomputing every closed period, at every position
    (monthly and quarterly plans and closes, payments before and after bookings)."""
    entries = _logged(envelopes)
    head, unskipped = fold(entries), fold(entries)  # each its own memo: neither reads what the other kept
    periods = [*MONTHS, next_period(MONTHS[-1]), *QUARTERS]
    for at in range(0, len(entries) + 1):
        fast, brute = head.view(at), unskipped.view(at)
        brute.skip_untouched = False
        for participant in [*PEOPLE, "r3"]:
            if not fast.has_participant(participant):
                continue
            for period in periods:
                assert fast.statement(participant, period) == brute.statement(participant, period), (at, period)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ledgers())
def test_one_book_read_at_every_position_answers_as_a_fresh_fold_does(envelopes: list[dict[str, Any]]) -> None:
    """Memoised figures (views, adjustments) are keyed by every position they depend on: one book
    read at every position, newest first and then oldest first, so that each read can find what
    reads at other positions kept, gives the statements of a book folded only that far; and the
    same attainment rows, which the book folded that far reads from its running sums where it can
    (decisions 39, 89 and 144: late deals, amendments and cancellations after closes)."""
    entries = _logged(envelopes)
    head = fold(entries)
    periods = [*MONTHS, next_period(MONTHS[-1]), *QUARTERS]
    fresh = [fold(entries[:at]) for at in range(len(entries) + 1)]
    newest_first = list(range(len(entries), -1, -1))
    for at in [*newest_first, *reversed(newest_first)]:
        memoised, alone = head.view(at), fresh[at].view()
        for participant in [*PEOPLE, "r3"]:
            if not alone.has_participant(participant):
                continue
            for period in periods:  # the bodies: a closed statement's recomputed total too
                assert memoised.statement(participant, period).body(at) == alone.statement(participant, period).body(
                    at), (at, period)
        for period in periods:
            assert memoised.rows(period) == alone.rows(period), (at, period)


def _own_views_agree_with_and_without_reach(entries: list[Sealed], people: list[str], periods: list[str]) -> None:
    """A period's own lines read at the last position whose event reaches its days
    (`LedgerState.effective_in`) are those read at the participant's latest position
    (`effective`), at every position: for a book whose state looks up no reach at all."""
    book, plain = fold(entries), fold(entries)
    plain.state.effective_in = lambda participant_id, days, at: plain.state.effective(participant_id, at)  # type: ignore[method-assign]
    for at in range(len(entries) + 1):
        for participant in people:
            for period in periods:
                reached, latest = book.engine.own(participant, period, at), plain.engine.own(participant, period, at)
                facts = attrgetter("credited", "lines", "warnings", "earned", "plan")
                assert facts(reached) == facts(latest), (at, participant, period)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ledgers())
def test_a_period_read_where_its_days_were_last_reached_reads_as_at_the_latest_position(
    envelopes: list[dict[str, Any]],
) -> None:
    """Closes, transfers, collection-basis plans of either length and payments before bookings."""
    _own_views_agree_with_and_without_reach(
        _logged(envelopes), [*PEOPLE, "r3"], [*MONTHS, next_period(MONTHS[-1]), *QUARTERS])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(engine.ledgers(max_ops=35))
def test_a_period_read_where_its_days_were_last_reached_reads_as_at_the_latest_position_too(
    led: engine.Ledger,
) -> None:
    """Plan versions and assignments of any date, amendments, cancellations within and past a
    clawback window, payments and reversals, adjustments and targets of any period."""
    _own_views_agree_with_and_without_reach(_logged(led.envelopes), led.people, [*engine.MONTHS, *engine.QUARTERS])


@st.composite
def cash_ledgers(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One collection-basis rep on tiered plans of a month or a quarter (by assignment, or by a
    later version), with targets of both, deals booked and paid anywhere in the half-year in any
    order: payments in another period than their booking, deals that move the tiers of deals paid
    before them. What the view's bounds of cash days must follow (decision 135)."""
    events: list[dict[str, Any]] = []

    def add(type_: str, **data: Any) -> None:
        events.append({"event_id": f"e{len(events)}", "type": type_, "data": data})

    def day() -> str:
        return f"{draw(st.sampled_from(MONTHS))}-{draw(st.integers(1, 28)):02d}"

    tiers = [("0", "0.04"), ("0.5", "0.08"), ("1", "0.12")]
    add("ParticipantRegistered", participant_id="r1", name="R", team_id="t", start_date="2020-01-01")
    for plan_id, period in (("cm", "month"), ("cq", "quarter")):
        add("PlanPublished", plan_id=plan_id, effective_from="2020-01-01", rules=rules(
            tiers, period=period, basis="collection", tier_method=draw(st.sampled_from(["marginal", "retroactive"]))))
    add("PlanAssigned", participant_id="r1", plan_id=draw(st.sampled_from(["cm", "cq"])), effective_from="2020-01-01")
    for period in [*MONTHS, *QUARTERS[:2]]:
        add("TargetSet", participant_id="r1", period=period, amount=f"{draw(st.integers(1, 12)) * 500}.00")
    deals = payments = 0
    for _ in range(draw(st.integers(4, 16))):
        action = draw(st.sampled_from(["deal", "deal", "pay", "pay", "change"]))
        if action == "deal":
            deals += 1
            add("DealBooked", deal_id=f"k{deals}", booked_on=day(), amount=f"{draw(st.integers(1, 40)) * 100}.00",
                currency="USD", credits=[{"participant_id": "r1", "share": "1"}])
        elif action == "pay" and deals:
            payments += 1
            add("PaymentReceived", payment_id=f"pay{payments}", deal_id=f"k{draw(st.integers(1, deals))}",
                amount=f"{draw(st.integers(1, 20)) * 100}.00", received_on=day())
        elif action == "change":  # the rep turns quarterly (or monthly) mid-way, from some day on
            if draw(st.booleans()):
                add("PlanAssigned", participant_id="r1", plan_id=draw(st.sampled_from(["cm", "cq"])),
                    effective_from=day())
            else:
                add("PlanPublished", plan_id="cm", effective_from=day(), rules=rules(
                    tiers, period="quarter", basis="collection", tier_method="retroactive"))
    return events


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cash_ledgers())
def test_a_collection_members_period_read_where_its_days_were_last_reached_reads_as_at_the_latest_position(
    envelopes: list[dict[str, Any]],
) -> None:
    """A release's period read at the last position whose event reached its days is read as at the
    latest one, whether the rep's credits count in months or quarters, and when that changes."""
    _own_views_agree_with_and_without_reach(_logged(envelopes), ["r1"], [*MONTHS, *QUARTERS[:2]])


def test_a_transfer_on_a_periods_last_day_moves_that_days_override_and_is_read_there() -> None:
    """A deal booked on March 31, then its rep moved to another manager from March 31: the
    override moves with it, and the March views of both managers are read after the transfer
    (its days start on the effective date; a day later would leave them as they were)."""
    events: list[dict[str, Any]] = []

    def add(type_: str, **data: Any) -> None:
        events.append({"event_id": f"e{len(events)}", "type": type_, "data": data})

    for manager, team in (("m1", "t"), ("m2", "u")):
        add("ParticipantRegistered", participant_id=manager, name=manager, team_id=team, start_date="2020-01-01")
    add("ParticipantRegistered", participant_id="r1", name="r1", team_id="t", manager_id="m1", start_date="2020-01-01")
    add("PlanPublished", plan_id="m", effective_from="2020-01-01", rules=rules([("0", "0")], override_rate="0.1"))
    add("PlanPublished", plan_id="p", effective_from="2020-01-01", rules=rules([("0", "0.05")]))
    for participant, plan in (("m1", "m"), ("m2", "m"), ("r1", "p")):
        add("PlanAssigned", participant_id=participant, plan_id=plan, effective_from="2020-01-01")
    add("DealBooked", deal_id="d1", booked_on="2026-03-31", amount="1000.00", currency="USD",
        credits=[{"participant_id": "r1", "share": "1"}])
    add("DealBooked", deal_id="d2", booked_on="2026-05-10", amount="10.00", currency="USD",
        credits=[{"participant_id": "r1", "share": "1"}])
    add("ParticipantTransferred", participant_id="r1", team_id="u", manager_id="m2", effective_date="2026-03-31")
    entries = _logged(events)
    _own_views_agree_with_and_without_reach(entries, ["m1", "m2", "r1"], ["2026-03", "2026-04", "2026-05", "2026-Q1"])
    book = fold(entries)
    for at, manager in ((len(entries) - 1, "m1"), (len(entries), "m2")):  # before the transfer, after it
        for other in ("m1", "m2"):
            overrides = [(line.kind, line.amount) for line in book.engine.own(other, "2026-03", at).lines]
            assert overrides == ([("override", Decimal("100.00"))] if other == manager else []), (at, other)


def _paid_and_own(book: Book, participant: str) -> tuple[Decimal, Decimal]:
    periods = set(MONTHS) | {next_period(MONTHS[-1])} | set(QUARTERS)
    paid = Decimal(0)
    own = Decimal(0)
    for period in periods:
        paid += book.statement(participant, period).total
        own += payable_total(book.view().own_payable(participant, period))
    return paid, own


def _base(plan_rules: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"event_id": "reg", "type": "ParticipantRegistered",
         "data": {"participant_id": "r1", "name": "R", "team_id": "t", "start_date": "2020-01-01"}},
        {"event_id": "plan", "type": "PlanPublished",
         "data": {"plan_id": "c", "effective_from": "2020-01-01", "rules": plan_rules}},
        {"event_id": "assign", "type": "PlanAssigned",
         "data": {"participant_id": "r1", "plan_id": "c", "effective_from": "2020-01-01"}},
        {"event_id": "target", "type": "TargetSet", "data": {"participant_id": "r1", "period": "2026-02",
                                                             "amount": "1000.00"}},
        {"event_id": "d1", "type": "DealBooked",
         "data": {"deal_id": "d1", "booked_on": "2026-02-10", "amount": "900.00", "currency": "USD",
                  "credits": [{"participant_id": "r1", "share": "1"}]}},
        # paid in January, before it was booked: its release lands in the January statement
        {"event_id": "pay", "type": "PaymentReceived",
         "data": {"payment_id": "pay", "deal_id": "d1", "amount": "900.00", "received_on": "2026-01-20"}},
        {"event_id": "close-1", "type": "PeriodClosed", "data": {"period": "2026-01"}},
        {"event_id": "close-2", "type": "PeriodClosed", "data": {"period": "2026-02"}},
    ]


_TIERED = rules([("0", "0.04"), ("0.8", "0.08"), ("1.2", "0.12")], basis="collection", tier_method="retroactive")
_LATE = {
    "amended": {"event_id": "late", "type": "DealAmended",
                "data": {"deal_id": "d1", "amount": "1500.00", "amended_on": "2026-03-02"}},
    "target changed": {"event_id": "late", "type": "TargetSet",
                       "data": {"participant_id": "r1", "period": "2026-02", "amount": "500.00"}},
    "another deal in the period": {"event_id": "late", "type": "DealBooked",
                                   "data": {"deal_id": "d2", "booked_on": "2026-02-25", "amount": "800.00",
                                            "currency": "USD", "credits": [{"participant_id": "r1", "share": "1"}]}},
}


def test_late_changes_reach_a_closed_period_through_a_payment_made_before_booking() -> None:
    """Each late event changes January's release of a February deal: March gets an adjustment for
    January, and skipping untouched closed periods must not skip it."""
    for name, late in _LATE.items():
        entries = _logged([*_base(_TIERED), late])
        fast, brute = fold(entries).view(), fold(entries).view()  # each its own memo
        brute.skip_untouched = False
        statement = fast.statement("r1", "2026-03")
        assert statement == brute.statement("r1", "2026-03"), name
        assert any(line.kind == "adjustment" and line.for_period == "2026-01" for line in statement.lines), name


def _became_collection(how: str) -> list[dict[str, Any]]:
    """`_base` with r1 on a booking plan at first, who becomes collection-basis before the deal."""
    events = _base(rules([("0", "0.05")]))
    at = next(i for i, e in enumerate(events) if e["event_id"] == "target")
    if how == "by a new version of their plan":
        change = [{"event_id": "v2", "type": "PlanPublished",
                   "data": {"plan_id": "c", "effective_from": "2020-01-01", "rules": _TIERED}}]
    elif how == "by an assignment":
        change = [{"event_id": "cc", "type": "PlanPublished",
                   "data": {"plan_id": "cc", "effective_from": "2020-01-01", "rules": _TIERED}},
                  {"event_id": "assign-cc", "type": "PlanAssigned",
                   "data": {"participant_id": "r1", "plan_id": "cc", "effective_from": "2020-01-01"}}]
    else:  # a split with a booking-basis partner, who must not hide r1's cash days
        events = _base(_TIERED)
        change = [{"event_id": "b", "type": "PlanPublished",
                   "data": {"plan_id": "b", "effective_from": "2020-01-01", "rules": rules([("0", "0.05")])}},
                  {"event_id": "reg-2", "type": "ParticipantRegistered",
                   "data": {"participant_id": "r2", "name": "S", "team_id": "t", "start_date": "2020-01-01"}},
                  {"event_id": "assign-2", "type": "PlanAssigned",
                   "data": {"participant_id": "r2", "plan_id": "b", "effective_from": "2020-01-01"}}]
        deal = next(e for e in events if e["event_id"] == "d1")
        deal["data"]["credits"] = [{"participant_id": "r1", "share": "0.9"}, {"participant_id": "r2", "share": "0.1"}]
    return [*events[:at], *change, *events[at:]]


def test_late_changes_reach_cash_days_of_whoever_became_collection_basis_later() -> None:
    """Only collection-basis participants' lines fall on cash days, so only their bounds count them
    (a booking-basis rep's closed periods are skipped sooner): one who became collection-basis by a
    plan version or an assignment, or shares a deal with a booking-basis rep, still gets them."""
    for how in ("by a new version of their plan", "by an assignment", "in a split deal"):
        for name, late in _LATE.items():
            entries = _logged([*_became_collection(how), late])
            fast, brute = fold(entries).view(), fold(entries).view()  # each its own memo
            brute.skip_untouched = False
            statement = fast.statement("r1", "2026-03")
            assert statement == brute.statement("r1", "2026-03"), (how, name)
            assert any(line.kind == "adjustment" and line.for_period == "2026-01" for line in statement.lines), (
                how, name)
