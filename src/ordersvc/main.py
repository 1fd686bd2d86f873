"""The ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ordersvc import db
from ordersvc.config import Settings, get_settings
from ordersvc.errors import ServiceError
from ordersvc.legacy.endpoint import router as legacy_router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = db.create_engine(db.resolve_database_url(settings), settings)
        app.state.engine = engine
        app.state.sessionmaker = db.create_sessionmaker(engine)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="ordersvc",
        version="0.1.0",
        summary="Prepaid-balance order service",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(legacy_router)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(
            {
                "type": "about:blank",
                "title": exc.message,
                "status": exc.status,
                "detail": exc.message,
                "code": exc.code,
            },
            status_code=exc.status,
            media_type="application/problem+json",
        )

    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> dict[str, str]:
        async with request.app.state.engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))
        return {"status": "ok"}

    return app


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory ordersvc.main:app_factory` (and `serve --workers`)."""
    return create_app()
