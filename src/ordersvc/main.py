"""The ASGI application."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi

from ordersvc import db, openapi_document
from ordersvc.accounts import second_factor
from ordersvc.accounts.auth_endpoints import router as auth_router
from ordersvc.accounts.endpoints import router as accounts_router
from ordersvc.admin.catalogue import router as admin_catalogue_router
from ordersvc.admin.endpoints import router as admin_router
from ordersvc.config import Settings, get_settings
from ordersvc.consent.pages import router as consent_router
from ordersvc.coupons.endpoints import router as coupons_router
from ordersvc.csv_export import ExportSlots
from ordersvc.dashboard.endpoints import router as dashboard_router
from ordersvc.deposits.endpoints import router as deposits_router
from ordersvc.deposits.webhooks import router as webhooks_router
from ordersvc.events.endpoints import router as events_router
from ordersvc.events.stream import Hub
from ordersvc.fulfilment.endpoints import router as fulfilment_router
from ordersvc.keyring import keyring
from ordersvc.ledger.endpoints import router as ledger_router
from ordersvc.legacy.endpoint import LEGACY_PATHS
from ordersvc.legacy.endpoint import router as legacy_router
from ordersvc.logging_config import configure_logging
from ordersvc.ops.client_text import UnacceptableTextFallback
from ordersvc.ops.health import router as health_router
from ordersvc.ops.middleware import HeadAsGetMiddleware, RequestContextMiddleware
from ordersvc.ops.ratelimit import create_rate_limiter
from ordersvc.orders.endpoints import router as orders_router
from ordersvc.outbox import mailer
from ordersvc.panel.endpoint import router as panel_router
from ordersvc.problem_pages import router as problem_pages_router
from ordersvc.problems import install_problem_handlers
from ordersvc.webhooks import sender as webhook_sender
from ordersvc.webhooks.endpoints import router as webhook_endpoints_router

DESCRIPTION = """\
Prepaid-balance orders. Your account holds a USD balance; an order (a target email and a
quantity of 500-50000) costs quantity / 1000 USD, debited when it is placed.

**Authentication**: two ways, one account.
- **API key** (scripts, SDKs): `Authorization: Bearer osk_...` or `X-API-Key: osk_...`. No CSRF
  token: browsers never attach it on their own.
- **Browser session** (the dashboard): `POST /v1/auth/login` with email and password (and a TOTP
  code once enrolled) sets the HttpOnly `ordersvc_session` cookie and the readable `ordersvc_csrf`
  cookie. With the session cookie, every request that changes anything must send `X-CSRF-Token`
  with the `ordersvc_csrf` value.
Keys are created with `ordersvc accounts create` (operators) or `POST /v1/api-keys` (signed in).

**Money** is a decimal string (`"125.50"`), never a float. **Times** are ISO 8601 UTC.

**Errors** are RFC 9457 problem documents (`application/problem+json`) with a stable `code`.

**Lists** are newest first, paged with `limit`, `starting_after` / `ending_before` and `has_more`.

The legacy action API (`POST /api`) is documented in docs/legacy-api.md; it is kept for old clients.
"""

TAGS = [
    {"name": "orders", "description": "Place orders and follow their status and progress."},
    {"name": "payments", "description": "Balance, the ledger of payments, and coupons."},
    {"name": "deposits", "description": "Crypto deposit addresses, deposits and bonus tiers."},
    {"name": "auth", "description": "Sign up, verify the address, sign in with a password (and TOTP), sessions."},
    {"name": "account", "description": "Your account, its password, email address and second factor."},
    {"name": "api-keys", "description": "Create, list and revoke API keys."},
    {
        "name": "webhooks",
        "description": "Webhook endpoints: events POSTed to your URL, signed (Standard Webhooks), retried; "
        "their deliveries.",
    },
    {"name": "events", "description": "Your events live, as Server-Sent Events."},
    {"name": "fulfilment", "description": "For fulfilment workers (worker tokens): claim orders, report progress."},
    {
        "name": "admin",
        "description": "The operator's console (`/admin`): operator sessions only (password and TOTP), every "
        "action in the audit log.",
    },
]


YOUNG_COLLECTION_THRESHOLD = 10_000  # allocations between the collector's young collections


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        keys = keyring(settings)  # first, so that a secret key it cannot use stops the start
        engine = db.create_engine(db.resolve_database_url(settings), settings)
        app.state.engine = engine
        app.state.sessionmaker = db.create_sessionmaker(engine)
        await second_factor.reseal_at_start(app.state.sessionmaker, keys)
        app.state.migration_head = db.migration_head()
        app.state.rate_limiter = create_rate_limiter(
            rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst, redis_url=settings.redis_url
        )
        # Everything loaded so far lives as long as the process: out of the collector's way, so
        # that its full collections (pauses of the whole worker) stay short under load.
        gc.freeze()
        # A request's objects die by reference counting as it ends; a young collection only walks
        # the requests in flight. Every 700 allocations (Python's default), that walk was 6% of
        # a worker's CPU in a profile under bench/load.py; every YOUNG_COLLECTION_THRESHOLD, a
        # fourteenth of it.
        gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])
        stop = asyncio.Event()
        app.state.event_hub = Hub(app.state.sessionmaker)
        background = []
        if settings.mailer_in_serve:
            background.append(asyncio.create_task(mailer.run(app.state.sessionmaker, settings, stop)))
        if settings.webhooks_in_serve:
            background.append(asyncio.create_task(webhook_sender.run(app.state.sessionmaker, settings, stop)))
        try:
            yield
        finally:
            stop.set()
            await app.state.event_hub.close()
            for task in background:
                await task
            if app.state.rate_limiter is not None:
                await app.state.rate_limiter.close()
            await engine.dispose()

    app = FastAPI(
        title="ordersvc",
        version="1.0.0",
        summary="Prepaid-balance order service",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        # The API reference is served from the package (dashboard.endpoints): FastAPI's pages load
        # Swagger UI and Redoc from a CDN.
        docs_url=None,
        redoc_url=None,
        # Relative: the API is where the document was read from (behind a path prefix, FastAPI puts
        # the prefix first).
        servers=[{"url": "/", "description": "This service: the origin the document was read from."}],
        # FastAPI's own OpenTelemetry hooks: off. Metrics are Prometheus (/metrics) and every request
        # has its log line; left on with no provider, they only cost a check per request (3% of
        # a worker's CPU under bench/load.py).
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.export_slots = ExportSlots(total=settings.export_max_concurrent, per_owner=settings.export_max_per_caller)
    install_problem_handlers(app, settings.cors_origins)
    # Routes are matched in order: the busiest (legacy `/api`, then orders) first. Each router's
    # route class guards the client's text (ops/client_text.py).
    for router in (
        legacy_router,
        orders_router,
        panel_router,
        ledger_router,
        deposits_router,
        coupons_router,
        accounts_router,
        auth_router,
        fulfilment_router,
        admin_router,
        admin_catalogue_router,
        webhook_endpoints_router,
        events_router,
        webhooks_router,
        consent_router,
        dashboard_router,
        health_router,
        problem_pages_router,
    ):
        app.include_router(router)
    app.router.routes.append(UnacceptableTextFallback())  # last: only what no route took
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "X-API-Key",
                "Content-Type",
                "Idempotency-Key",
                "X-Request-ID",
                "Last-Event-ID",
            ],
            # What a browser app may read of an answer, beyond the CORS-safelisted fields.
            expose_headers=["Idempotent-Replayed", "X-Request-ID", "RateLimit", "RateLimit-Policy", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(HeadAsGetMiddleware, exempt=LEGACY_PATHS)
    # Outermost: it times, limits and logs everything below it, CORS and errors included.
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        timeout_seconds=settings.request_timeout_seconds,
        cors_origins=settings.cors_origins,
    )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=app.servers,
            )
            app.openapi_schema = openapi_document.finish(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    return app


def app_factory() -> FastAPI:
    """Entry point for `serve` (and `serve --workers`). Run by uvicorn directly, give it the
    same protocol, or the 16 KiB cap on request heads is lost:
    `uvicorn --factory ordersvc.main:app_factory --http ordersvc.ops.http:HttpProtocol`."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    return create_app(settings)
