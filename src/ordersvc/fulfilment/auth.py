"""`WorkerDep`: the fulfilment worker whose token a request carries."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ordersvc.fulfilment import service as fulfilment
from ordersvc.fulfilment.models import Worker
from ordersvc.request_db import SessionDep

worker_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="workerAuth",
    description="`Authorization: Bearer owk_...`: a worker token from `ordersvc workers create NAME`.",
)


async def current_worker(
    session: SessionDep, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(worker_scheme)]
) -> Worker:
    return await fulfilment.authenticate(session, token=bearer.credentials if bearer else None)


WorkerDep = Annotated[Worker, Depends(current_worker)]
