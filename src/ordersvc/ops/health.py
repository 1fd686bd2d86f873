"""Liveness, readiness and (when enabled) metrics: for load balancers, orchestrators and
Prometheus, not for customers (none of these routes is in the API document)."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import col

from ordersvc.ops import metrics
from ordersvc.ops.client_text import GuardedRoute
from ordersvc.outbox.models import OutboxMessage

logger = logging.getLogger(__name__)

READINESS_TIMEOUT_SECONDS = 2.0

router = APIRouter(include_in_schema=False, route_class=GuardedRoute)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive and answering (nothing else is checked: restarting a process
    because its database is down would not help)."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready for traffic: the database answers and its schema is at this code's migration head."""
    head: str = request.app.state.migration_head
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS), request.app.state.engine.connect() as connection:
            current = (await connection.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar()
    except Exception as exc:  # any failure to reach the database means "not ready"
        logger.warning("not ready: database unreachable: %s", exc.__class__.__name__)
        return JSONResponse({"status": "unavailable", "reason": "database unreachable"}, status_code=503)
    if current != head:
        return JSONResponse(
            {"status": "unavailable", "reason": f"database schema at {current}, this code needs {head}"},
            status_code=503,
        )
    return JSONResponse({"status": "ready", "migration": head})


@router.get("/metrics")
async def metrics_endpoint(request: Request) -> Response:
    if not request.app.state.settings.metrics_enabled:
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    engine = request.app.state.engine
    metrics.DB_POOL_IN_USE.set(engine.pool.checkedout())
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS), engine.connect() as connection:
            backlog = await connection.execute(
                sa.select(sa.func.count()).select_from(OutboxMessage).where(col(OutboxMessage.status) == "pending")
            )
            metrics.OUTBOX_BACKLOG.set(backlog.scalar_one())
    except Exception as exc:  # the other metrics are still worth a scrape
        logger.warning("outbox backlog not measured: %s", exc.__class__.__name__)
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
