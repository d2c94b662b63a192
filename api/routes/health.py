"""Liveness and readiness for orchestrators (no token needed, no data shown)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, Any]:
    return {"ok": True}


@router.get("/readyz")
async def readyz(svc: ServicesDep) -> dict[str, Any]:
    """Ready when the database answers and the projections have caught up with it."""
    stored = svc.store.head()
    svc.log.catch_up()
    return {"ok": True, "stored_head": stored, "projected_head": svc.books.head.position}
