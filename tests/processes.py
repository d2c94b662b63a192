"""Real `ledger serve` processes for tests that need them (faults, scale-out)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ADMIN = "faults-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
REPO = Path(__file__).resolve().parents[1]
#: How long a client waits for any answer. The service must answer within it, even while the database is down.
CLIENT_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- a real server process -------------------------------------------------------------------

_FSIZE_WRAPPER = (
    "import os, resource, sys\n"
    "limit = int(sys.argv[1])\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'cli', *sys.argv[2:]])\n"
)


class Server:
    """`python -m cli serve` on a free loopback port; always SIGKILLed in teardown at the latest."""

    def __init__(self, database_url: str, logs: Path, file_size_limit: int | None = None, workers: int = 1) -> None:
        self.database_url = database_url
        self.logs = logs
        self.file_size_limit = file_size_limit
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = CLIENT_TIMEOUT) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers=AUTH, timeout=timeout)

    def start(self, timeout: float = 60.0) -> float:
        assert self.process is None
        self.port = free_port()
        self.starts += 1
        env = {
            **os.environ,
            "LEDGER_DATABASE_URL": self.database_url,
            "LEDGER_ADMIN_TOKEN": ADMIN,
            "PYTHONUNBUFFERED": "1",
        }
        args = ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]
        if self.file_size_limit is None:
            command = [sys.executable, "-m", "cli", *args]
        else:
            command = [sys.executable, "-c", _FSIZE_WRAPPER, str(self.file_size_limit), *args]
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"server-{self.starts}.log", "wb") as log:
            # In a session of its own, so that `kill` reaches uvicorn's workers too, not only their parent.
            self.process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        started = time.monotonic()
        with httpx.Client(base_url=self.base, timeout=2.0) as probe:
            while time.monotonic() - started < timeout:
                if self.process.poll() is not None:
                    raise AssertionError(f"the server exited with {self.process.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if probe.get("/healthz").status_code == 200:
                        return time.monotonic() - started
                time.sleep(0.05)
        raise AssertionError(f"the server did not answer /healthz within {timeout}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flush, no rollback by the process itself."""
        if self.process is not None:
            self._kill_group()
            self.process.wait(timeout=30)
            self.process = None

    def stop(self) -> None:
        """SIGTERM (a clean stop), SIGKILL if it takes too long."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._kill_group()
                self.process.wait(timeout=15)
            self.process = None

    def _kill_group(self) -> None:
        """SIGKILL to the server's process group (uvicorn's workers too), while its leader is not yet
        reaped: after that its id may be another process's."""
        assert self.process is not None
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def log_tail(self, chars: int = 4000) -> str:
        path = self.logs / f"server-{self.starts}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("server-*.log")))


