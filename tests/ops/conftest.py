from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from ordersvc.config import Settings
from ordersvc.main import create_app

AppClient = Callable[..., AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]]


@asynccontextmanager
async def app_client(**settings: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app with its own settings (a rate limit, small limits, metrics on), and a client."""
    app = create_app(Settings(mailer_in_serve=False, **settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client
