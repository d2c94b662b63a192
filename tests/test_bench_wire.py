"""The benchmark's lean appending client (`bench.wire`, decision 101) reads a real service's
answers whole, keeps its connection across them, and reports what the service answered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.wire import Connection
from tests.processes import ADMIN, Server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    served = Server(f"sqlite:///{tmp_path}/ledger.db", tmp_path / "logs")
    served.start()
    yield served
    served.kill()


def _envelope(event_id: str, type_: str, **data: object) -> bytes:
    return json.dumps({"event_id": event_id, "type": type_, "data": data}).encode()


def test_appends_over_one_connection_get_their_own_answers(server: Server) -> None:
    host, port = server.base.removeprefix("http://").split(":")
    headers = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
    connection = Connection(host, int(port), headers)
    try:
        registered = _envelope("r1", "ParticipantRegistered", participant_id="p1", name="P", team_id="t",
                               start_date="2026-01-01")
        assert connection.post("/v1/events", registered)[0] == 201
        positions = []
        for i in range(1, 4):
            deal = _envelope(f"d{i}", "DealBooked", deal_id=f"d{i}", booked_on="2026-06-15", amount="1000.00",
                             currency="USD", credits=[{"participant_id": "p1", "share": "1"}])
            status, body = connection.post("/v1/events", deal)
            assert status == 201, body
            answer = json.loads(body)
            assert (answer["event_id"], answer["duplicate"]) == (f"d{i}", False)
            positions.append(answer["position"])
        assert positions == [2, 3, 4]
        status, body = connection.post("/v1/events", _envelope("d1", "DealBooked", deal_id="d1"))  # reused id
        assert status == 409 and b"event_id" in body
        bad = _envelope("d9", "DealBooked", deal_id="d9", booked_on="2026-06-15", amount="ten", currency="USD",
                        credits=[{"participant_id": "p1", "share": "1"}])
        status, body = connection.post("/v1/events", bad)
        assert status == 422 and b"data.amount" in body
        status, body = connection.post("/v1/events", _envelope("d2", "DealBooked", deal_id="d2", booked_on="2026-06-15",
                                                                amount="1000.00", currency="USD",
                                                                credits=[{"participant_id": "p1", "share": "1"}]))
        assert status in (200, 201) and json.loads(body)["duplicate"] is True  # a resend: the same position
        assert json.loads(body)["position"] == 3
    finally:
        connection.close()
    with server.client() as client:
        stored = client.get("/v1/events", params={"limit": 10}).json()
    assert [event["event_id"] for event in stored["events"]] == ["r1", "d1", "d2", "d3"]
