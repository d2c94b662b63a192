"""The benchmark's lean appending client (`bench.wire`, decision 101): it reads answers whole,
however they arrive, keeps its connection across them, reconnects when told to close, refuses
what it cannot read, and against a real service reports what the service answered."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.wire import Connection
from tests.processes import AUTH, CLIENT_TIMEOUT, Server

# --- against a scripted server: how answers arrive ---------------------------------------------


class Scripted:
    """A loopback server answering each request with pieces of bytes sent 20 ms apart (so the
    client reads them apart), closing the connection after a reply when told to."""

    def __init__(self, replies: list[tuple[list[bytes], bool]]) -> None:
        self.replies = replies
        self.requests: list[bytes] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        connection: socket.socket | None = None
        for pieces, close in self.replies:
            if connection is None:
                connection, _ = self._listener.accept()
                self.connections += 1
            self.requests.append(_read_request(connection))
            for piece in pieces:
                connection.sendall(piece)
                time.sleep(0.02)
            if close:
                connection.close()
                connection = None
        if connection is not None:
            connection.close()

    def close(self) -> None:
        self._thread.join(5)
        self._listener.close()


def _read_request(connection: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += connection.recv(65536)
    return data


@pytest.fixture
def scripted() -> Iterator[list[Scripted]]:
    made: list[Scripted] = []
    yield made
    for server in made:
        server.close()


def _client(made: list[Scripted], replies: list[tuple[list[bytes], bool]]) -> tuple[Scripted, Connection]:
    server = Scripted(replies)
    made.append(server)
    return server, Connection("127.0.0.1", server.port, {"Authorization": "Bearer t"}, timeout=5)


def test_an_answer_read_in_pieces_is_read_whole(scripted: list[Scripted]) -> None:
    server, client = _client(scripted, [
        ([b"HTTP/1.1 201 Created\r\nx-content-length: 99\r\ncontent-le", b"ngth: 5\r\n\r\nhel", b"lo"], False),
    ])
    assert client.post("/v1/events", b'{"a":1}') == (201, b"hello")
    client.close()
    assert server.requests == [
        b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer t\r\nContent-Length: 7\r\n\r\n"
        b'{"a":1}' % server.port
    ]


def test_what_arrives_past_an_answer_is_the_next_answer(scripted: list[Scripted]) -> None:
    both = (b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\none"
            b"HTTP/1.1 409 Conflict\r\ncontent-length: 3\r\n\r\ntwo")
    server, client = _client(scripted, [([both], False), ([], False)])
    assert client.post("/v1/events", b"1") == (201, b"one")
    assert client.post("/v1/events", b"2") == (409, b"two")
    client.close()
    assert server.connections == 1


def test_an_answer_saying_close_makes_the_next_request_reconnect(scripted: list[Scripted]) -> None:
    server, client = _client(scripted, [
        ([b"HTTP/1.1 500 Internal Server Error\r\nconnection: close\r\ncontent-length: 1\r\n\r\nx"], True),
        ([b"HTTP/1.1 201 Created\r\ncontent-length: 1\r\n\r\ny"], False),
    ])
    assert client.post("/v1/events", b"1") == (500, b"x")
    assert client.post("/v1/events", b"2") == (201, b"y")
    client.close()
    assert server.connections == 2


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "without content-length"),
        (b"HTTP/1.0 201 Created\r\ncontent-length: 2\r\n\r\nok", "not an HTTP/1.1 answer"),
        (b"HTTP/1.1 201 Created\r\ncontent-length: 10\r\n\r\nabc", "closed the connection"),
    ],
)
def test_what_it_cannot_read_is_an_error(scripted: list[Scripted], reply: bytes, problem: str) -> None:
    _, client = _client(scripted, [([reply], True)])
    with pytest.raises(ConnectionError, match=problem):
        client.post("/v1/events", b"1")
    client.close()


# --- against the service ----------------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    served = Server(f"sqlite:///{tmp_path}/ledger.db", tmp_path / "logs")
    try:
        served.start()
        yield served
    finally:
        served.kill()


def _deal(deal_id: str, amount: str = "1000.00") -> bytes:
    return json.dumps({"event_id": deal_id, "type": "DealBooked", "data": {
        "deal_id": deal_id, "booked_on": "2026-06-15", "amount": amount, "currency": "USD",
        "credits": [{"participant_id": "p1", "share": "1"}]}}).encode()


@pytest.mark.slow
def test_appends_over_one_connection_get_their_own_answers(server: Server) -> None:
    connection = Connection("127.0.0.1", server.port, {**AUTH, "Content-Type": "application/json"}, CLIENT_TIMEOUT)
    try:
        registered = json.dumps({"event_id": "r1", "type": "ParticipantRegistered", "data": {
            "participant_id": "p1", "name": "P", "team_id": "t", "start_date": "2026-01-01"}}).encode()
        assert connection.post("/v1/events", registered)[0] == 201
        answers = []
        for deal_id in ("d1", "d2", "d3"):
            status, body = connection.post("/v1/events", _deal(deal_id))
            assert status == 201, body
            answers.append(json.loads(body))
        assert [(a["event_id"], a["duplicate"]) for a in answers] == [("d1", False), ("d2", False), ("d3", False)]
        positions = [a["position"] for a in answers]
        assert positions == sorted(set(positions))
        status, body = connection.post("/v1/events", _deal("d1", amount="5.00"))  # the id, other content
        assert status == 409 and b"event_id" in body
        status, body = connection.post("/v1/events", _deal("d9", amount="ten"))
        assert status == 422 and b"data.amount" in body
        status, body = connection.post("/v1/events", _deal("d2"))  # a resend
        assert status == 200, body
        assert (json.loads(body)["duplicate"], json.loads(body)["position"]) == (True, positions[1])
    finally:
        connection.close()
    with server.client() as client:
        stored = client.get("/v1/events", params={"limit": 10}).json()
    assert [event["event_id"] for event in stored["events"]] == ["r1", "d1", "d2", "d3"]
