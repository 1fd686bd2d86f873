"""Reading request bodies with a size limit, checked while reading."""

from __future__ import annotations

from starlette.requests import Request

from ordersvc.text import is_ascii_digits


async def read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None when it is larger than `limit` bytes (checked while reading)."""
    declared = request.headers.get("content-length", "")
    if is_ascii_digits(declared) and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
