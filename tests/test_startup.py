"""The service is ready for its first request when it starts (decision 143): anyio imports its event
loop's backend and starts the thread pool on first use, and the first statement or ranking after a
start paid 30-40 ms for it, four times a warm statement. Checked in a fresh interpreter, where
nothing has used anyio yet: this test process has."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Starts the app's lifespan on an asyncio loop, as a server does, and reports what it loaded.
_PROBE = """
import asyncio, json, sys, tempfile, threading
from api.app import create_app
from ledger.settings import Settings
from replay.bootstrap import build

BACKEND = "anyio._backends._asyncio"

async def main():
    with tempfile.TemporaryDirectory() as folder:
        services = build(Settings(database_url=f"sqlite:///{folder}/ledger.db", admin_token="t" * 40))
        app = create_app(services)
        before = BACKEND in sys.modules
        inbox, sent = [{"type": "lifespan.startup"}], []
        async def receive():
            return inbox.pop(0) if inbox else await asyncio.Event().wait()
        async def send(message):
            sent.append(message["type"])
        task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send))
        while not sent and not task.done():
            await asyncio.sleep(0.01)
        if task.done():
            task.result()  # the lifespan failed: its error, not a wait for the test's timeout
        pool = [t.name for t in threading.enumerate() if t.name.startswith("AnyIO worker thread")]
        print(json.dumps({"before": before, "sent": sent, "after": BACKEND in sys.modules, "pool": len(pool)}))
        task.cancel()
        services.close()

asyncio.run(main())
"""


def test_the_thread_pool_is_started_before_the_first_request() -> None:
    probe = subprocess.run([sys.executable, "-c", _PROBE], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr[-2000:]
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    assert found == {"before": False, "sent": ["lifespan.startup.complete"], "after": True, "pool": 1}
