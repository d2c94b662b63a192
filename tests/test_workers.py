"""`ledger serve --workers 2`: uvicorn's worker processes, each with services of its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import AUTH, Server

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    served = Server(f"sqlite:///{tmp_path}/ledger.db", tmp_path / "logs", workers=2)
    served.start()
    yield served
    served.kill()


def _log_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue  # anything else a worker prints (none expected) is not a structured line
    return lines


def test_each_worker_logs_its_requests_and_every_read_sees_the_append_whichever_worker_answers(server: Server) -> None:
    registration = {"event_id": "e1", "type": "ParticipantRegistered",
                    "data": {"participant_id": "r1", "name": "R", "team_id": "t", "start_date": "2026-01-01"}}
    with httpx.Client(base_url=server.base, headers=AUTH, timeout=15) as client:
        appended = client.post("/v1/events", json=registration, headers={"X-Request-ID": "w-append"})
    assert appended.status_code == 201, appended.text
    reads = []
    for n in range(8):  # a connection each, so that the workers take turns accepting them
        with httpx.Client(base_url=server.base, headers=AUTH, timeout=15) as client:
            reads.append(client.get("/v1/events", headers={"X-Request-ID": f"w-read-{n}"}))
    assert [r.status_code for r in reads] == [200] * 8
    assert all([e["event_id"] for e in r.json()["events"]] == ["e1"] for r in reads)
    server.stop()
    requests = {line["request_id"]: line for line in _log_lines(server.log_text()) if line.get("message") == "request"}
    assert (requests["w-append"]["method"], requests["w-append"]["path"], requests["w-append"]["status"]) == (
        "POST", "/v1/events", 201)
    assert all((requests[f"w-read-{n}"]["path"], requests[f"w-read-{n}"]["status"]) == ("/v1/events", 200)
               for n in range(8))
