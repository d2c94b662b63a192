"""Liveness and readiness for orchestrators (no token needed, no data shown)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, Any]:
    return {"ok": True}


@router.get("/readyz")
def readyz(svc: ServicesDep) -> dict[str, Any]:
    """Ready when the database answers; says how far this process has read the log.

    A plain `def`: it waits on the database in the thread pool, never on the event loop.
    `projected_head` may trail `stored_head` for a moment while a commit is under way.
    """
    stored = svc.store.head()
    svc.log.catch_up(wait=False)  # never queue behind a commit: during an outage one takes seconds
    return {"ok": True, "stored_head": stored, "projected_head": svc.log.head}
