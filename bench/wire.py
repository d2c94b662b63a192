"""A lean HTTP/1.1 keep-alive client for the benchmark's 64 appending clients (decision 101).

The benchmark's clients share the service's two cores. `http.client` parses every answer's
headers with the `email` package and cost the machine about as much CPU per request as the
service itself; this client sends prepared bytes and reads only what it needs (the status,
`content-length` and `connection`), so the cores go to the service, as they would with clients
elsewhere.
"""

from __future__ import annotations

import re
import socket

_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:[ \t]*close", re.IGNORECASE)


class Connection:
    """One keep-alive connection; `post` answers (status, body). An answer must carry
    `content-length` (the service's always do): one without it, one that is not HTTP/1.1, or a
    connection closed mid-answer raises `ConnectionError`. After an answer saying
    `connection: close` the next request opens a new connection, as `http.client` did."""

    def __init__(self, host: str, port: int, headers: dict[str, str], timeout: float = 60.0) -> None:
        self._address = (host, port)
        self._timeout = timeout
        fixed = "".join(f"{name}: {value}\r\n" for name, value in {"Host": f"{host}:{port}", **headers}.items())
        self._fixed = fixed.encode("latin-1")
        self._socket: socket.socket | None = None
        self._buffer = b""

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self._socket is None:
            self._socket = socket.create_connection(self._address, timeout=self._timeout)
            self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._buffer = b""
        request = b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n" % (path.encode(), self._fixed, len(body))
        self._socket.sendall(request + body)
        buffer = self._buffer
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            buffer += self._receive(self._socket)
        head = buffer[: end + 2]
        if not head.startswith(b"HTTP/1.1 "):
            raise ConnectionError(f"not an HTTP/1.1 answer: {head[:80]!r}")
        length = _LENGTH.search(head)
        if length is None:
            raise ConnectionError(f"an answer without content-length: {head[:300]!r}")
        start = end + 4
        stop = start + int(length.group(1))
        while len(buffer) < stop:
            buffer += self._receive(self._socket)
        self._buffer = buffer[stop:]
        if _CLOSE.search(head):
            self.close()
        return int(head[9:12]), buffer[start:stop]

    @staticmethod
    def _receive(connection: socket.socket) -> bytes:
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError("the service closed the connection")
        return chunk

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
