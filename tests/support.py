"""Test helpers: a thin HTTP client for the ledger and builders for common events."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import MagicMock, patch

from fastapi.testclient import TestClient

from replay import forked
from replay.bootstrap import Services

ADMIN_TOKEN = "test-admin-token"
_ids = itertools.count(1)


def rules(
    tiers: list[tuple[str, str]] | None = None,
    *,
    period: str = "month",
    basis: str = "booking",
    tier_method: str = "marginal",
    cap: str | None = None,
    spiffs: list[dict[str, str]] | None = None,
    clawback_days: int | None = None,
    override_rate: str = "0",
) -> dict[str, Any]:
    return {
        "period": period,
        "basis": basis,
        "tier_method": tier_method,
        "tiers": [{"from": f, "rate": r} for f, r in (tiers or [("0", "0.05")])],
        "cap": cap,
        "spiffs": spiffs or [],
        "clawback_days": clawback_days,
        "override_rate": override_rate,
    }


class Api:
    """Drives the service through HTTP exactly as an integration would."""

    def __init__(self, client: TestClient, services: Services, token: str = ADMIN_TOKEN) -> None:
        self.client = client
        self.services = services
        self.headers = {"Authorization": f"Bearer {token}"}

    def as_token(self, token: str) -> Api:
        return Api(self.client, self.services, token)

    # --- writing ---------------------------------------------------------------------

    def post(self, type_: str, event_id: str | None = None, **data: Any) -> Any:
        envelope = {"event_id": event_id or f"e-{next(_ids)}", "type": type_, "data": data}
        return self.client.post("/v1/events", json=envelope, headers=self.headers)

    def add(self, type_: str, event_id: str | None = None, **data: Any) -> int:
        """Append one event that must be accepted; return its position."""
        response = self.post(type_, event_id, **data)
        assert response.status_code == 201, response.text
        position: int = response.json()["position"]
        return position

    def batch(self, envelopes: list[dict[str, Any]]) -> Any:
        return self.client.post("/v1/events/batch", json={"events": envelopes}, headers=self.headers)

    def participant(self, participant_id: str, team_id: str = "t1", manager_id: str | None = None,
                    start_date: str = "2020-01-01") -> int:
        data: dict[str, Any] = {"participant_id": participant_id, "name": participant_id.title(),
                                "team_id": team_id, "start_date": start_date}
        if manager_id is not None:
            data["manager_id"] = manager_id
        return self.add("ParticipantRegistered", **data)

    def plan(self, plan_id: str, effective_from: str = "2020-01-01", **rule_args: Any) -> int:
        return self.add("PlanPublished", plan_id=plan_id, effective_from=effective_from, rules=rules(**rule_args))

    def assign(self, participant_id: str, plan_id: str, effective_from: str = "2020-01-01",
               effective_to: str | None = None) -> int:
        return self.add("PlanAssigned", participant_id=participant_id, plan_id=plan_id,
                        effective_from=effective_from, effective_to=effective_to)

    def target(self, participant_id: str, period: str, amount: str) -> int:
        return self.add("TargetSet", participant_id=participant_id, period=period, amount=amount)

    def deal(self, deal_id: str, booked_on: str, amount: str, credits: dict[str, str] | str,
             product: str | None = None) -> int:
        if isinstance(credits, str):
            credits = {credits: "1"}
        data: dict[str, Any] = {
            "deal_id": deal_id, "booked_on": booked_on, "amount": amount, "currency": "USD",
            "credits": [{"participant_id": p, "share": s} for p, s in credits.items()],
        }
        if product is not None:
            data["product"] = product
        return self.add("DealBooked", **data)

    def payment(self, payment_id: str, deal_id: str, amount: str, received_on: str) -> int:
        return self.add("PaymentReceived", payment_id=payment_id, deal_id=deal_id, amount=amount,
                        received_on=received_on)

    def close(self, period: str) -> int:
        return self.add("PeriodClosed", period=period)

    # --- reading ---------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self.headers)

    def statement(self, participant_id: str, period: str, **params: Any) -> dict[str, Any]:
        response = self.get(f"/v1/statements/{participant_id}/{period}", **params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def total(self, participant_id: str, period: str, **params: Any) -> str:
        return str(self.statement(participant_id, period, **params)["total"])

    def events(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self.get("/v1/events", after=after, limit=10_000).json()
            out += page["events"]
            if not page["events"]:
                return out
            after = page["next_after"]

    def head(self) -> int:
        return len(self.events())


@contextmanager
def eager_forks() -> Iterator[MagicMock]:
    """Fork a worker after the first item, on a machine with two CPUs at least, and let it take
    the next item before this process goes on (so the worker surely answers some); yields a spy
    of the forks, and fails if a worker did not answer (the service would have redone its share)."""
    fork = forked._fork

    def fork_and_wait(context: Any, items: Any, work: Any, taken: Any) -> Any:
        before = taken.value
        started = fork(context, items, work, taken)
        deadline = time.monotonic() + 30
        while taken.value == before:
            assert time.monotonic() < deadline, "the forked worker took no item"
            time.sleep(0.001)
        return started

    with patch.multiple(forked, FORK_AFTER_S=0.0, FORK_WORTH_S=0.0, usable_cpus=lambda: 2), \
            patch.object(forked, "_log") as log, patch.object(forked, "_fork", side_effect=fork_and_wait) as spy:
        yield spy
    assert not log.warning.called, log.warning.call_args  # every worker answered for what it took


def memo_held(engine: Any) -> int:
    """What a statement engine's memo holds, counted from its values (not by the engine's own
    measure): one per entry, plus each line and warning it holds."""
    total = 0
    for value, _ in engine._memo.values():
        lines = value if isinstance(value, list) else getattr(value, "lines", ())
        total += 1 + len(lines) + len(getattr(value, "warnings", ()))
    return total


def watch_books(monkeypatch: Any, module: Any) -> list[int]:
    """The memo bound of every book that `module` makes from now on (the replay audit's)."""
    bounds: list[int] = []
    make = module.Book

    def watched(*args: Any, **options: Any) -> Any:
        book = make(*args, **options)
        bounds.append(book.engine.memo_lines)
        return book

    monkeypatch.setattr(module, "Book", watched)
    return bounds
