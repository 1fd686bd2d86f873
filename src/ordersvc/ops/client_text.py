"""One guard for every text a client sends: the path, the query, the headers (cookies, API key,
Idempotency-Key, ...) and the body (JSON strings and object keys, form fields), refused before
any route sees them when they hold NUL, an unpaired surrogate or invalid UTF-8 (see
`ordersvc.text`). Such text is a 500 in PostgreSQL and in comparisons; a Pydantic type on each
field would be one more rule to forget, and would miss headers, queries, and the routes that
read their body themselves.

Answered as RFC 9457 problem details: 422 `invalid_text`, with the field in `errors`.

Paths that read the client's text themselves are not guarded here: the legacy `/api` (its
contract answers HTTP 200 `{"error": ...}`; its parser replaces such values) and, for their
bodies only, routes whose reports must not be lost for their text (the processors' signed
events, a worker's failure reason), which store it cleaned (`text.clean_text`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import unquote_to_bytes

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ordersvc.problems import CodedHTTPException, problem_response
from ordersvc.text import (
    UNACCEPTABLE_TEXT_MESSAGE,
    Location,
    decodes_to_storable,
    is_storable,
    shown,
    unstorable_form_field,
    unstorable_in,
)

CODE = "invalid_text"
DETAIL = f"The request holds text this service does not accept: see errors. {UNACCEPTABLE_TEXT_MESSAGE}"


class UnacceptableText(CodedHTTPException):
    """Raised from `receive` when the body is complete and holds such text: an HTTPException, so
    that FastAPI's body reader passes it on to the problem handlers."""

    def __init__(self, where: Location) -> None:
        errors = [{"loc": list(where), "msg": UNACCEPTABLE_TEXT_MESSAGE, "type": CODE}]
        super().__init__(422, CODE, DETAIL, errors=errors)


class ClientTextGuard:
    def __init__(self, app: ASGIApp, *, unguarded_paths: Iterable[str], raw_body_routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self.unguarded_paths = frozenset(unguarded_paths)
        self.raw_body_paths: list[re.Pattern[str]] = [route.path_regex for route in raw_body_routes]  # type: ignore[attr-defined]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.unguarded_paths:
            await self.app(scope, receive, send)
            return
        where = unacceptable_in_head(scope)
        if where is not None:
            refusal = UnacceptableText(where)
            await problem_response(422, CODE, DETAIL, errors=refusal.errors)(scope, receive, send)
            return
        if any(pattern.match(scope["path"]) for pattern in self.raw_body_paths):
            await self.app(scope, receive, send)
            return
        await self.app(scope, _checked_body(scope, receive), send)


def unacceptable_in_head(scope: Scope) -> Location | None:
    """Where the request line or a header holds unacceptable text, or None."""
    raw_path: bytes | None = scope.get("raw_path")
    path: str = scope["path"]
    if not is_storable(path) or (
        raw_path is not None
        and (b"%" in raw_path or not raw_path.isascii())
        and not decodes_to_storable(unquote_to_bytes(raw_path))
    ):
        return ("path",)
    field = unstorable_form_field(scope.get("query_string", b""))
    if field is not None:
        return ("query", field)
    for name, value in scope["headers"]:
        # Header values are latin-1 (any byte but NUL is text); the HTTP parser refuses NUL,
        # but nothing below should depend on which server runs the app.
        if b"\x00" in value or b"\x00" in name:
            return ("header", shown(name.decode("latin-1")))
    return None


def _content_type(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media_type: bytes = value.partition(b";")[0].strip().lower()
            return media_type
    return b""


def unacceptable_in_body(body: bytes, content_type: bytes) -> Location | None:
    """Where the body holds unacceptable text as its route would decode it, or None. JSON is
    read whatever the Content-Type (as `request.json()` would), but only when the bytes can hold
    such a string: a `\\u` escape, a NUL byte (UTF-16/32) or a UTF-8 lead byte of a surrogate."""
    if content_type == b"application/x-www-form-urlencoded":
        field = unstorable_form_field(body)
        return None if field is None else ("body", field)
    if content_type == b"multipart/form-data":
        return ("body",) if b"\x00" in body else None
    if b"\\u" not in body and b"\x00" not in body and b"\xed" not in body:
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON: the route refuses it as it always has
    where = unstorable_in(document)
    return None if where is None else ("body", *where)


def _checked_body(scope: Scope, receive: Receive) -> Receive:
    """`receive`, checking the body when its last part arrives (before the route gets it)."""
    chunks: list[bytes] = []

    async def receive_checked() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                where = unacceptable_in_body(body, _content_type(scope))
                if where is not None:
                    raise UnacceptableText(where)
        return message

    return receive_checked
