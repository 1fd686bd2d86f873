"""CSV exports, streamed: rows are read in chunks from their own read-only snapshot and written
out as they come, never built in memory. Cells a spreadsheet would run as a formula (starting with
`=`, `+`, `-`, `@`, a tab or a carriage return, other than a plain number) are prefixed with `'`."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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


def csv_response(
    maker: async_sessionmaker[AsyncSession],
    filename: str,
    header: Sequence[str],
    rows: Callable[[AsyncSession], AsyncIterator[T]],
    render: Callable[[T], Sequence[Any]],
) -> StreamingResponse:
    """`rows` of a session of its own (one REPEATABLE READ, read-only snapshot: the export is
    consistent however long it streams), each rendered as a line."""

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

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
