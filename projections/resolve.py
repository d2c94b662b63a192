"""Which plan version and which reporting line apply on a date (§5.1), as of a position.

Effective dates are data: nothing here reads a clock.
"""

from __future__ import annotations

from datetime import date

from projections.state import LedgerState, PlanVersion


def plan_on(state: LedgerState, participant_id: str, day: date, at: int) -> PlanVersion | None:
    """The version in force for a participant on a day, or None (no plan).

    Among assignments covering the day the latest appended wins; among that
    plan's versions, the latest *published* one whose effective_from <= day,
    so a later publish supersedes earlier ones from its own date on.
    """
    for assignment in reversed(state.assignments.get(participant_id, ())):
        if assignment.position <= at and assignment.covers(day):
            for version in reversed(state.plans[assignment.plan_id]):
                if version.position <= at and version.effective_from <= day:
                    return version
            return None
    return None


class Varies:
    """`plan_through`'s answer when the plan in force is not the same on every day of the range."""


VARIES = Varies()


def plan_through(
    state: LedgerState, participant_id: str, first: date, last: date, at: int
) -> PlanVersion | Varies | None:
    """The version `plan_on` gives for every day from `first` to `last`, if it is the same for all.

    Lets a period's credits resolve their plan once instead of once per deal. Conservative: an
    assignment covering part of the range answers VARIES even if another fills the rest.
    """
    for assignment in reversed(state.assignments.get(participant_id, ())):
        if assignment.position > at or assignment.effective_from > last:
            continue
        if assignment.effective_to is not None and assignment.effective_to < first:
            continue
        if not (assignment.covers(first) and assignment.covers(last)):
            return VARIES
        for version in reversed(state.plans[assignment.plan_id]):
            if version.position > at:
                continue
            if version.effective_from <= first:
                return version
            if version.effective_from <= last:
                return VARIES  # published later than the one in force on `first`, and takes over
        return None
    return None


def team_on(state: LedgerState, participant_id: str, day: date, at: int) -> tuple[str, str | None]:
    """(team_id, manager_id) on a day, as of a position (`Participant.team_on`)."""
    return state.participants[participant_id].team_on(day, at)
