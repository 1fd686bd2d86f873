"""Database outages, told apart from bugs: a lost connection, a refused connection, an empty
pool or a statement over its time limit is the service's trouble, not the client's, and not a
crash. Clients get 503 with Retry-After (legacy: its usual HTTP 200 error) and may retry; with
an Idempotency-Key (legacy `request_id`) a retry never places an order twice."""

from __future__ import annotations

import traceback

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
    """A lost, refused or exhausted connection, a server going down, a statement over its time,
    or a deadlock or serialization failure (retrying is the cure for those too). Not a value the
    driver could not encode (a client's input) and not any other bug: those stay 500s."""
    if isinstance(error, sa_exc.TimeoutError):  # no pooled connection free in time
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        error = error.orig if error.orig is not None else error
        error = getattr(error, "__cause__", None) or error  # the asyncpg error behind the adapter's
    if isinstance(error, asyncpg.DataError):  # e.g. an integer beyond BIGINT: the client's value
        return False
    if isinstance(
        error,
        (
            asyncpg.PostgresConnectionError,
            asyncpg.ConnectionDoesNotExistError,
            asyncpg.QueryCanceledError,  # statement_timeout
            asyncpg.CannotConnectNowError,  # starting up or shutting down
            asyncpg.AdminShutdownError,
            asyncpg.CrashShutdownError,
            asyncpg.DeadlockDetectedError,
            asyncpg.SerializationError,
            ConnectionError,  # refused, reset, aborted
        ),
    ):
        return True
    # Any other OSError counts only when the driver raised it (connecting to a server that is
    # down, e.g. the embedded server's Unix socket gone while it restarts), not a bug's OSError.
    return isinstance(error, OSError) and _raised_by_driver(error)


def _raised_by_driver(error: BaseException) -> bool:
    frames = traceback.extract_tb(error.__traceback__)
    return any("/asyncpg/" in frame.filename or "/sqlalchemy/pool/" in frame.filename for frame in frames)
