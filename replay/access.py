"""Who may do what (§7). Routes ask these questions; the answers live here, not in api/."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from ledger.tokens import Principal, Role
from projections.book import BookView, Row, rank

APPENDABLE: dict[Role, frozenset[str]] = {
    "admin": frozenset(
        {
            "ParticipantRegistered",
            "ParticipantTransferred",
            "PlanPublished",
            "PlanAssigned",
            "TargetSet",
            "DealBooked",
            "DealAmended",
            "DealCancelled",
            "PaymentReceived",
            "PaymentReversed",
            "AdjustmentRecorded",
            "PeriodClosed",
            "DisputeOpened",
            "DisputeResolved",
        }
    ),
    "finance": frozenset({"AdjustmentRecorded", "PeriodClosed", "DisputeOpened", "DisputeResolved"}),
    "integration": frozenset(
        {
            "ParticipantRegistered",
            "ParticipantTransferred",
            "DealBooked",
            "DealAmended",
            "DealCancelled",
            "PaymentReceived",
            "PaymentReversed",
        }
    ),
    "manager": frozenset(),
    "rep": frozenset(),
}

#: Roles that read everything: the log, every statement, audits and payouts.
AUDITORS: frozenset[Role] = frozenset({"admin", "finance"})
READERS: frozenset[Role] = frozenset({"admin", "finance", "manager", "rep"})


class Forbidden(Exception):
    pass


def require(condition: bool, message: str = "this token may not do that") -> None:
    if not condition:
        raise Forbidden(message)


def token_subject_problem(book: BookView, role: str, participant_id: str | None) -> str | None:
    """§7: manager and rep tokens speak for a registered participant; None when the request is fine."""
    if role not in ("manager", "rep"):
        return None
    if participant_id is None:
        return f"required for role '{role}'"
    if not book.has_participant(participant_id):
        return f"unknown participant '{participant_id}'"
    return None


def check_reader(principal: Principal) -> None:
    require(principal.role in READERS, f"role '{principal.role}' may not read statements or views")


def check_may_append(principal: Principal) -> None:
    """Roles that append nothing are refused before their body is even read."""
    require(bool(APPENDABLE[principal.role]), f"role '{principal.role}' may not append events")


def check_append(principal: Principal, envelopes: list[Any]) -> None:
    """Decided from the request alone, before anything is looked up."""
    allowed = APPENDABLE[principal.role]
    check_may_append(principal)
    for envelope in envelopes:
        type_ = envelope.get("type") if isinstance(envelope, dict) else None
        if isinstance(type_, str) and type_ not in allowed and type_ in APPENDABLE["admin"]:
            raise Forbidden(f"role '{principal.role}' may not append {type_}")


def check_statement_caller(principal: Principal, participant_id: str) -> None:
    """The part of the statement check that needs no lookup (reps, integrations)."""
    require(principal.role in READERS, f"role '{principal.role}' may not read statements")
    if principal.role == "rep":
        require(principal.participant_id == participant_id, "a rep may read only their own statements")


def is_direct_report(book: BookView, manager_id: str, participant_id: str, period: str) -> bool:
    if not book.has_participant(participant_id):
        return False
    return book.team_of(participant_id, period)[1] == manager_id


def check_statement_reader(book: BookView, principal: Principal, participant_id: str, period: str) -> None:
    if principal.role == "manager":
        assert principal.participant_id is not None
        require(
            participant_id == principal.participant_id
            or is_direct_report(book, principal.participant_id, participant_id, period),
            "a manager may read only their own and their direct reports' statements",
        )


def _team_of(book: BookView, principal: Principal, period: str) -> str | None:
    if principal.participant_id is None or not book.has_participant(principal.participant_id):
        return None
    return book.team_of(principal.participant_id, period)[0]


def check_attainment_caller(principal: Principal) -> None:
    """Attainment is for admin, finance and managers (their team); a rep has their statement and ranking."""
    allowed = principal.role in AUDITORS or principal.role == "manager"
    require(allowed, f"role '{principal.role}' may not read attainment")


def visible_attainment(book: BookView, principal: Principal, period: str, team_id: str | None) -> list[Row]:
    check_attainment_caller(principal)
    if principal.role in AUDITORS:
        return book.rows(period, team_id)
    own_team = _team_of(book, principal, period)
    require(own_team is not None, "this token's participant is not registered")
    require(team_id in (None, own_team), "a manager reads only their own team's attainment")
    return book.rows(period, own_team)


def pseudonym(salt: str, participant_id: str) -> str:
    return "peer-" + hashlib.sha256(f"{salt}:{participant_id}".encode()).hexdigest()[:10]


def visible_rankings(
    book: BookView, principal: Principal, period: str, team_id: str | None, anonymous: bool, salt: str
) -> list[dict[str, Any]]:
    require(principal.role in READERS, f"role '{principal.role}' may not read rankings")
    if principal.role in AUDITORS:
        return [row.ranked_body(r) for r, row in rank(book.rows(period, team_id))]
    own_team = _team_of(book, principal, period)
    require(own_team is not None, "this token's participant is not registered")
    require(team_id in (None, own_team), "only your own team's ranking is visible")
    ranked = rank(book.rows(period, own_team))
    if principal.role == "manager":
        return [row.ranked_body(r) for r, row in ranked]
    out = []
    for r, row in ranked:
        if row.participant_id == principal.participant_id:
            out.append(row.ranked_body(r))
            continue
        shown = pseudonym(salt, row.participant_id) if anonymous else row.participant_id
        out.append({"rank": r, "participant_id": shown, "team_id": row.team_id, "attainment": row.attainment})
    return out


def _transferred(envelopes: Sequence[Any]) -> list[Any]:
    """The participants that hypothetical ParticipantTransferred events move."""
    return [
        envelope["data"].get("participant_id")
        for envelope in envelopes
        if isinstance(envelope, dict)
        and envelope.get("type") == "ParticipantTransferred"
        and isinstance(envelope.get("data"), dict)
    ]


def check_what_if(
    book: BookView,
    principal: Principal,
    participant_ids: list[str],
    periods: list[str],
    envelopes: Sequence[Any] = (),
) -> None:
    """Rows only for participants the caller may read. A rep or manager may not move anyone else
    under themselves or a report: the override lines of such a hypothetical transfer would show
    that participant's real credits."""
    require(principal.role in READERS, f"role '{principal.role}' may not run what-if")
    if principal.role in AUDITORS:
        return
    me = principal.participant_id
    for participant_id in [*participant_ids, *_transferred(envelopes)]:
        if principal.role == "rep":
            require(participant_id == me, "a rep may run what-if only for themselves")
        else:
            assert me is not None
            require(
                participant_id == me
                or (
                    isinstance(participant_id, str)
                    and bool(periods)  # a report is one as of a period's last day: with none, no one is
                    and all(is_direct_report(book, me, participant_id, period) for period in periods)
                ),
                "a manager may run what-if only for themselves and their direct reports",
            )

