"""Recording and reading the audit log. Every operator action is recorded in the transaction of
the change it describes (both commit, or neither); a sign-in, failed or not, in its own."""

from __future__ import annotations

import getpass
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ordersvc.audit.models import AuditEntry
from ordersvc.pagination import CursorPage, CursorRequest, fetch_cursor_page

__all__ = ["Actor", "AuditEntry", "AuditFilter"]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a console operator (`operator_id`), or the CLI on the server (None)."""

    operator_id: int | None
    label: str  # the operator's email, or `cli:<user>@<host>`
    ip: str | None = None

    @classmethod
    def local_operator(cls) -> Actor:
        """The CLI's actor: the operating-system user who ran it, on this host."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return cls(None, f"cli:{user}@{socket.gethostname()}")


async def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    *,
    object_type: str | None = None,
    object_id: object = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """One entry, in the caller's transaction."""
    session.add(
        AuditEntry(
            operator_id=actor.operator_id,
            actor=actor.label,
            action=action,
            object_type=object_type,
            object_id=None if object_id is None else str(object_id),
            before=before,
            after=after,
            reason=reason,
            ip=actor.ip,
        )
    )
    await session.flush()


@dataclass(frozen=True, slots=True)
class AuditFilter:
    operator_id: int | None = None
    actor: str | None = None  # exact label (an email, or `cli:...`)
    action: str | None = None  # exact, or a prefix ending in "." (`payment.`)
    object_type: str | None = None
    object_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _where(f: AuditFilter) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if f.operator_id is not None:
        where.append(col(AuditEntry.operator_id) == f.operator_id)
    if f.actor is not None:
        where.append(col(AuditEntry.actor) == f.actor)
    if f.action is not None:
        if f.action.endswith("."):
            where.append(col(AuditEntry.action).startswith(f.action, autoescape=True))
        else:
            where.append(col(AuditEntry.action) == f.action)
    if f.object_type is not None:
        where.append(col(AuditEntry.object_type) == f.object_type)
    if f.object_id is not None:
        where.append(col(AuditEntry.object_id) == f.object_id)
    if f.since is not None:
        where.append(col(AuditEntry.created_at) >= f.since)
    if f.until is not None:
        where.append(col(AuditEntry.created_at) < f.until)
    return where


async def page(session: AsyncSession, f: AuditFilter, request: CursorRequest) -> CursorPage[AuditEntry]:
    """Entries matching `f`, newest first, a cursor page by id."""
    rows, has_more = await fetch_cursor_page(
        session, sa.select(AuditEntry).where(*_where(f)), col(AuditEntry.id), request
    )
    return CursorPage(items=[row[0] for row in rows], has_more=has_more)


async def stream(session: AsyncSession, f: AuditFilter, *, chunk: int = 500) -> AsyncIterator[AuditEntry]:
    """Every entry matching `f`, newest first, read in chunks by id (an export: never the whole
    log in memory)."""
    last: int | None = None
    while True:
        stmt = sa.select(AuditEntry).where(*_where(f)).order_by(col(AuditEntry.id).desc()).limit(chunk)
        if last is not None:
            stmt = stmt.where(col(AuditEntry.id) < last)
        rows = list((await session.execute(stmt)).scalars().all())
        for row in rows:
            yield row
        if len(rows) < chunk:
            return
        last = rows[-1].id
