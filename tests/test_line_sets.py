"""What an adjustment line names: the event ids of the lines that changed (decision 102).

`changed_event_ids` must find exactly the lines that comparing the two views as sets of lines
finds, whether lines are shared objects, equal copies, alike in their identifying fields but
different in an amount, or repeated on one side.
"""

from __future__ import annotations

from copy import copy
from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from projections.lines import Kind, Line, changed_event_ids, payable_lines, payable_total

_KINDS: st.SearchStrategy[Kind] = st.sampled_from(["commission", "earned", "spiff", "override", "manual"])


@st.composite
def _line(draw: st.DrawFn) -> Line:
    deal = draw(st.integers(1, 4))
    return Line(
        draw(_KINDS),
        Decimal(draw(st.sampled_from(["10.00", "12.50", "-3.00"]))),
        "2026-03",
        (date(2026, 3, deal), deal),
        tuple(draw(st.lists(st.sampled_from([f"d{deal}", "plan-1", "plan-2", "target"]), min_size=1, max_size=3,
                            unique=True))),
        deal_id=f"k{deal}",
        plan_version=draw(st.sampled_from([1, 2])),
    )


@st.composite
def _views(draw: st.DrawFn) -> tuple[list[Line], list[Line]]:
    """Two views sharing some line objects, holding equal copies of others, and lines of their own."""
    shared = draw(st.lists(_line(), max_size=6))
    a = [*shared, *draw(st.lists(_line(), max_size=6))]
    b = [copy(line) if draw(st.booleans()) else line for line in shared] + draw(st.lists(_line(), max_size=6))
    return draw(st.permutations(a)), draw(st.permutations(b))


def _by_sets(a: list[Line], b: list[Line]) -> list[str]:
    return sorted({event_id for line in set(a) ^ set(b) for event_id in line.event_ids})


@given(_views())
def test_changed_event_ids_are_those_of_the_lines_on_one_side_only(views: tuple[list[Line], list[Line]]) -> None:
    a, b = views
    assert changed_event_ids(a, b) == _by_sets(a, b)
    assert changed_event_ids(b, a) == _by_sets(a, b)


def test_a_line_alike_in_its_identity_but_for_its_amount_has_changed() -> None:
    before = Line("commission", Decimal("10.00"), "2026-03", (date(2026, 3, 1), 1), ("d1", "plan-1"))
    now = copy(before)
    assert changed_event_ids([now], [before]) == []
    now.amount = Decimal("11.00")
    assert changed_event_ids([now], [before]) == ["d1", "plan-1"]
    other = Line("manual", Decimal("5.00"), "2026-03", (date(2026, 3, 2), 2), ("adj-1",))
    assert changed_event_ids([other, now], [before, other]) == ["d1", "plan-1"]


def test_lines_repeated_on_one_side_count_once_as_sets_do() -> None:
    line = Line("spiff", Decimal("50.00"), "2026-03", (date(2026, 3, 1), 1), ("d1", "plan-1"))
    assert changed_event_ids([line, copy(line)], [line]) == []
    assert changed_event_ids([line, line], []) == ["d1", "plan-1"]
    assert changed_event_ids([line, line], [line]) == []


def test_lines_both_sides_share_are_left_out_whatever_shares_their_sort_key() -> None:
    """A commission line and its deal's spiff line share a sort key: the spiff that changed is
    found beside the commission line both views hold, and a copy of that line on one side only
    counts as the line itself, not as a change."""
    commission = Line("commission", Decimal("100.00"), "2026-03", (date(2026, 3, 1), 1), ("d1", "plan-1"))
    spiff_before = Line("spiff", Decimal("50.00"), "2026-03", (date(2026, 3, 1), 1), ("d1", "plan-1"))
    spiff_now = copy(spiff_before)
    spiff_now.amount = Decimal("60.00")
    assert changed_event_ids([commission, spiff_now], [commission, spiff_before]) == ["d1", "plan-1"]
    assert changed_event_ids([commission, copy(commission)], [commission]) == []
    late = Line("commission", Decimal("10.00"), "2026-03", (date(2026, 3, 2), 7), ("d7", "plan-1"))
    assert changed_event_ids([commission, spiff_before, late], [spiff_before, commission]) == ["d7", "plan-1"]


@given(st.lists(_line(), max_size=8))
def test_payable_lines_and_total_leave_out_earned_lines_only(lines: list[Line]) -> None:
    payable = [line for line in lines if line.kind in {"commission", "spiff", "override", "manual"}]
    assert payable_lines(lines) == tuple(payable)
    assert payable_total(lines) == sum((line.amount for line in payable), Decimal(0))


def test_late_deals_and_a_new_plan_version_name_only_what_changed() -> None:
    """A period's late deals add lines whose events the other view names nowhere; the lines both
    views name the same events for are compared whole (decision 147)."""
    def line(deal: int, plan: str, amount: str, before: str = "0") -> Line:
        return Line("commission", Decimal(amount), "2026-06", (date(2026, 6, deal), deal), (f"d{deal}", plan),
                    deal_id=f"k{deal}", credited_before=Decimal(before))

    at_close = [line(1, "plan-1", "10.00"), line(2, "plan-1", "5.00", "100")]
    now = [line(1, "plan-1", "10.00"), line(3, "plan-1", "7.00"), line(2, "plan-1", "5.00", "170")]
    assert changed_event_ids(now, at_close) == ["d2", "d3", "plan-1"]  # d1's line is equal, d2's moved up
    assert changed_event_ids(now, at_close) == _by_sets(now, at_close)
    assert changed_event_ids(at_close, [*at_close, at_close[0]]) == []
    version_2 = [line(1, "plan-2", "12.00"), line(2, "plan-2", "6.00", "100")]
    assert changed_event_ids(version_2, at_close) == ["d1", "d2", "plan-1", "plan-2"]
    assert changed_event_ids(version_2, at_close) == _by_sets(version_2, at_close)
