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


def team_on(state: LedgerState, participant_id: str, day: date, at: int) -> tuple[str, str | None]:
    """(team_id, manager_id) on a day: the latest-dated transfer on or before it, else registration."""
    participant = state.participants[participant_id]
    best = None
    for transfer in participant.transfers:
        if (
            transfer.position <= at
            and transfer.effective_date <= day
            and (best is None or transfer.effective_date >= best.effective_date)
        ):
            best = transfer
    if best is None:
        return participant.team_id, participant.manager_id
    return best.team_id, best.manager_id
