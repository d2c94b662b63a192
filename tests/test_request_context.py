"""What every response and log line carries, on the single-append fast path and through FastAPI alike:
request ids, security headers, one JSON log line per request, and a plain 500 for a fault."""

from __future__ import annotations

import json
import logging
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.logs import JsonFormatter
from ledger.settings import Settings
from replay.bootstrap import Services, build
from tests.support import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SECURITY = {
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    built = build(Settings(database_url=f"sqlite:///{tmp_path}/ledger.db", admin_token=ADMIN_TOKEN))
    yield built
    built.close()


def _registration(event_id: str) -> dict[str, Any]:
    return {"event_id": event_id, "type": "ParticipantRegistered",
            "data": {"participant_id": "r1", "name": "R", "team_id": "t", "start_date": "2026-01-01"}}


def _requests(client: TestClient) -> dict[str, Any]:
    return {
        "append (fast path)": client.post("/v1/events", json=_registration("e1"), headers=AUTH),
        "rejected append": client.post("/v1/events", json={"event_id": "e2"}, headers=AUTH),
        "unauthenticated append": client.post("/v1/events", json=_registration("e3")),
        "statement": client.get("/v1/statements/r1/2026-01", headers=AUTH),
        "unknown path": client.get("/nowhere", headers=AUTH),
    }


def test_every_answer_carries_a_fresh_request_id_and_the_security_headers(services: Services) -> None:
    with TestClient(create_app(services)) as client:
        answers = _requests(client)
    assert [a.status_code for a in answers.values()] == [201, 422, 401, 200, 404]
    ids = [a.headers["x-request-id"] for a in answers.values()]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and set(i) <= set(string.hexdigits.lower()) for i in ids)
    for name, answer in answers.items():
        assert {k: answer.headers.get(k) for k in SECURITY} == SECURITY, name
        assert answer.headers["content-security-policy"].startswith("default-src 'none'"), name


def test_a_request_id_sent_is_echoed(services: Services) -> None:
    with TestClient(create_app(services)) as client:
        fast = client.post("/v1/events", json=_registration("e1"), headers={**AUTH, "X-Request-ID": "crm-42"})
        slow = client.get("/v1/events", headers={**AUTH, "X-Request-ID": "crm-43"})
    assert (fast.headers["x-request-id"], slow.headers["x-request-id"]) == ("crm-42", "crm-43")


def test_a_request_id_that_is_not_an_id_is_replaced(services: Services) -> None:
    """A client's prose, or another request's id with a suffix, must not be what the logs trace."""
    with TestClient(create_app(services)) as client:
        answers = [client.get("/v1/events", headers={**AUTH, "X-Request-ID": sent})
                   for sent in ("crm 42; DROP", "x" * 65, "crm-42\tother")]
    ids = [answer.headers["x-request-id"] for answer in answers]
    assert len(set(ids)) == 3 and all(len(i) == 32 and i.isalnum() for i in ids), ids


def test_one_log_line_per_request_without_the_query_string(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="ledger.http"), TestClient(create_app(services)) as client:
        appended = client.post("/v1/events", json=_registration("e1"), headers=AUTH)
        read = client.get("/v1/statements/r1/2026-01", params={"as_of_position": 1}, headers=AUTH)
    records = [r for r in caplog.records if r.name == "ledger.http"]
    assert len(records) == 2
    lines = [json.loads(JsonFormatter().format(r)) for r in records]
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("POST", "/v1/events", 201), ("GET", "/v1/statements/r1/2026-01", 200)]
    assert [line["request_id"] for line in lines] == [appended.headers["x-request-id"], read.headers["x-request-id"]]
    assert all(line["message"] == "request" and line["level"] == "info" and line["ms"] >= 0 for line in lines)
    assert ADMIN_TOKEN not in caplog.text and "as_of_position" not in caplog.text


def test_a_fault_in_an_append_answers_a_plain_500_and_stores_nothing(
    services: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a bug")

    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        monkeypatch.setattr(services.log, "submit_async", broken)
        with caplog.at_level(logging.INFO, logger="ledger.http"):
            answer = client.post("/v1/events", json=_registration("e1"), headers=AUTH)
        monkeypatch.undo()
        events = client.get("/v1/events", headers=AUTH).json()["events"]
    assert (answer.status_code, answer.text) == (500, "Internal Server Error")
    assert answer.headers["x-content-type-options"] == "nosniff" and answer.headers["x-request-id"]
    assert [getattr(r, "status", None) for r in caplog.records if r.name == "ledger.http"] == [500]
    assert events == []
