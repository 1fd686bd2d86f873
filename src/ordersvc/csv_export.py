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
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from fastapi import Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Receive, Scope, Send

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
    """At most `total` exports stream at once in this process, `per_owner` of them for one owner
    (an account, an operator). One event loop per process: plain counters."""

    def __init__(self, *, total: int, per_owner: int) -> None:
        self.total, self.per_owner = total, per_owner
        self.running = 0
        self._by_owner: dict[str, int] = {}

    def take(self, owner: str) -> Callable[[], None]:
        """A slot for `owner` (TooManyExports, ExportsBusy), and the function that gives it back
        (once, however often it is called)."""
        if self._by_owner.get(owner, 0) >= self.per_owner:
            raise TooManyExports()
        if self.running >= self.total:
            raise ExportsBusy()
        self.running += 1
        self._by_owner[owner] = self._by_owner.get(owner, 0) + 1
        given_back = False

        def give_back() -> None:
            nonlocal given_back
            if given_back:
                return
            given_back = True
            self.running -= 1
            left = self._by_owner[owner] - 1
            if left:
                self._by_owner[owner] = left
            else:
                del self._by_owner[owner]

        return give_back


class _ExportResponse(StreamingResponse):
    """Gives its slot back when it has been sent, or failed, or the client went away; and if it
    is never sent at all (the request failed after the route returned it), when it is collected."""

    def __init__(self, content: AsyncIterator[bytes], *, give_back: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._give_back = give_back
        weakref.finalize(self, give_back)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._give_back()


def csv_response(
    request: Request,
    owner: str,
    filename: str,
    header: Sequence[str],
    rows: Callable[[AsyncSession], AsyncIterator[T]],
    render: Callable[[T], Sequence[Any]],
) -> StreamingResponse:
    """`rows` of a session of its own (one REPEATABLE READ, read-only snapshot: the export is
    consistent however long it streams), each rendered as a line; in one of the process's export
    slots (`owner`: whose slot, `account:<id>` or `operator:<id>`)."""
    give_back = request.app.state.export_slots.take(owner)
    maker = request.app.state.sessionmaker

    async def body() -> AsyncIterator[bytes]:
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

    return _ExportResponse(
        body(),
        give_back=give_back,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
