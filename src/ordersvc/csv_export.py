"""CSV exports, streamed: rows are read in chunks from their own read-only snapshot and written
out as they come, never built in memory. Cells a spreadsheet would run as a formula (starting with
`=`, `+`, `-`, `@`, a tab or a carriage return, other than a plain number) are prefixed with `'`.

An export holds a pooled connection and a snapshot for as long as its client reads, so a process
streams only so many at once (`ExportSlots`): a customer who opens exports in every tab, or reads
them slowly, cannot take the connections that orders need."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from ordersvc.errors import ServiceError

T = TypeVar("T")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")  # and their full-width forms
FLUSH_ROWS = 200


def cell(value: object) -> str:
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if text.lstrip(" ").startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


class TooManyExports(ServiceError):
    status = 429
    code = "too_many_exports"
    message = "Your other exports are still streaming: wait for one to finish."
    retry_after = 5


class ExportsBusy(ServiceError):
    status = 503
    code = "exports_busy"
    message = "The server is streaming as many exports as it can: try again in a few seconds."
    retry_after = 5


EXPORT_ERRORS = (TooManyExports, ExportsBusy)


class ExportSlots:
    """At most `total` exports stream at once in this process for customers, and as many for
    operators (so that customers reading slowly never keep the operators' exports waiting), and at
    most `per_owner` of them for one owner (an account, an operator: `account:<id>`,
    `operator:<id>`). One event loop per process: plain counters."""

    def __init__(self, *, total: int, per_owner: int) -> None:
        self.total, self.per_owner = total, per_owner
        self._by_owner: dict[str, int] = {}
        self._by_kind: dict[str, int] = {}

    @property
    def running(self) -> int:
        return sum(self._by_kind.values())

    def take(self, owner: str) -> Callable[[], None]:
        """A slot for `owner` (TooManyExports, ExportsBusy), and the function that gives it back
        (once, however often it is called)."""
        kind = owner.partition(":")[0]
        if self._by_owner.get(owner, 0) >= self.per_owner:
            raise TooManyExports()
        if self._by_kind.get(kind, 0) >= self.total:
            raise ExportsBusy()
        self._by_kind[kind] = self._by_kind.get(kind, 0) + 1
        self._by_owner[owner] = self._by_owner.get(owner, 0) + 1
        given_back = False

        def give_back() -> None:
            nonlocal given_back
            if given_back:
                return
            given_back = True
            self._by_kind[kind] -= 1
            left = self._by_owner[owner] - 1
            if left:
                self._by_owner[owner] = left
            else:
                del self._by_owner[owner]

        return give_back


class ExportSlot:
    """A request's hold on one export slot: taken by `csv_response`, given back when the request
    ends, however it ends (the export sent, failed, its client gone, or the request failing after
    the route returned): `export_slot` is a request-scoped dependency, which FastAPI leaves only
    after the response."""

    def __init__(self, slots: ExportSlots) -> None:
        self._slots = slots
        self._give_back: Callable[[], None] | None = None
        self._body: AsyncGenerator[bytes] | None = None

    def take(self, owner: str) -> None:
        if self._give_back is None:
            self._give_back = self._slots.take(owner)

    def streams(self, body: AsyncGenerator[bytes]) -> AsyncGenerator[bytes]:
        """`body`, closed when the slot is given back: a client that went away mid-export leaves
        its generator suspended, and with it the export's connection and snapshot."""
        self._body = body
        return body

    async def give_back(self) -> None:
        try:
            if self._body is not None:
                await self._body.aclose()  # its session's `async with` ends: the connection goes back
        finally:
            if self._give_back is not None:
                self._give_back()
                self._give_back = None


async def export_slot(request: Request) -> AsyncIterator[ExportSlot]:
    slot = ExportSlot(request.app.state.export_slots)
    try:
        yield slot
    finally:
        await slot.give_back()


ExportSlotDep = Annotated[ExportSlot, Depends(export_slot, scope="request")]


def csv_response(
    request: Request,
    slot: ExportSlot,
    owner: str,
    filename: str,
    header: Sequence[str],
    rows: Callable[[AsyncSession], AsyncIterator[T]],
    render: Callable[[T], Sequence[Any]],
) -> StreamingResponse:
    """`rows` of a session of its own (one REPEATABLE READ, read-only snapshot: the export is
    consistent however long it streams), each rendered as a line; in one of the process's export
    slots (`owner`: whose slot, `account:<id>` or `operator:<id>`)."""
    slot.take(owner)
    maker = request.app.state.sessionmaker

    async def body() -> AsyncGenerator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(header)
        async with maker() as session:
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            await session.execute(sa.text("SET TRANSACTION READ ONLY"))
            count = 0
            async for row in rows(session):
                writer.writerow([cell(v) for v in render(row)])
                count += 1
                if count % FLUSH_ROWS == 0:
                    yield buffer.getvalue().encode()
                    buffer.seek(0)
                    buffer.truncate()
            await session.rollback()
        yield buffer.getvalue().encode()

    return StreamingResponse(
        slot.streams(body()),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
