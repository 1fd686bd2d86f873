"""Database outages, told apart from bugs: a lost connection, a refused connection, an empty
pool or a statement over its time limit is the service's trouble, not the client's, and not a
crash. Clients get 503 with Retry-After (legacy: its usual HTTP 200 error) and may retry; with
an Idempotency-Key (legacy `request_id`) a retry never places an order twice."""

from __future__ import annotations

import asyncpg
from sqlalchemy import exc as sa_exc

RETRY_AFTER_SECONDS = 1
# What a database outage can surface as (each is then checked with is_database_unavailable).
DATABASE_ERROR_CLASSES: tuple[type[Exception], ...] = (
    sa_exc.DBAPIError,
    sa_exc.TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
)
UNAVAILABLE_MESSAGE = "The service is temporarily unavailable. Please retry."


def is_database_unavailable(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated or isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return True
        error = error.orig if error.orig is not None else error
    if isinstance(error, sa_exc.TimeoutError):  # no pooled connection free in time
        return True
    cause = getattr(error, "__cause__", None)
    for candidate in (error, cause):
        if isinstance(
            candidate,
            (
                asyncpg.PostgresConnectionError,
                asyncpg.ConnectionDoesNotExistError,
                asyncpg.QueryCanceledError,  # statement_timeout
                asyncpg.CannotConnectNowError,  # starting up or shutting down
                asyncpg.AdminShutdownError,
                ConnectionError,
                OSError,
            ),
        ):
            return True
    return False
