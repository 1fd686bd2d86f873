"""The database as a route sees it: the request's transaction as a FastAPI dependency (apart
from `db`, so that what does not serve HTTP, the CLI, loads no FastAPI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from ordersvc.db import request_transaction


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's transaction, as a dependency."""
    async with request_transaction(request) as session:
        yield session


# scope="function": commit before the response is sent, so a client never sees success for a
# transaction that then fails to commit.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
