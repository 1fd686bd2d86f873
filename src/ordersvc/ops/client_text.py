"""One guard for every text a client sends: the path, the query, the headers (cookies, API key,
Idempotency-Key, ...) and the body (JSON strings and object keys, form fields), refused before
the route runs when they hold NUL, an unpaired surrogate or invalid UTF-8 (see `ordersvc.text`).
Such text is a 500 in PostgreSQL and in comparisons; a Pydantic type on each field would be one
more rule to forget, and would miss headers, queries, and the routes that read their body
themselves.

The guard is a route class: a router declares it (`APIRouter(route_class=GuardedRoute)`), and
nothing here knows a path. A route whose reports must not be lost for their text (a
processor's signed event, a worker's failure reason) declares `CleanedBodyRoute`: its head is
guarded, its body reaches it as sent, and it stores the text cleaned (`text.clean_text`). The
legacy `/api` has its own route class and reads its text itself (its contract answers HTTP 200
`{"error": ...}`; its parser replaces such values). A request that no route takes is refused
the same way by the app's last route (`UnacceptableTextFallback`) rather than answered 404 or
redirected. `tests/ops/test_guarded_routes.py` walks the app: every route declares one of these.

Answered as RFC 9457 problem details, `invalid_text` with the field in `errors`: 400 for the
request head (path, query, headers), 422 for the body."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from itertools import chain
from typing import Any, ClassVar
from urllib.parse import unquote_to_bytes

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from ordersvc.problems import CodedHTTPException
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

RouteHandler = Callable[[Request], Coroutine[Any, Any, Response]]


class UnacceptableText(CodedHTTPException):
    """Raised by a guarded route before it runs: an HTTPException, rendered by the problem
    handlers like every other."""

    def __init__(self, where: Location) -> None:
        errors = [{"loc": list(where), "msg": UNACCEPTABLE_TEXT_MESSAGE, "type": CODE}]
        # In the request head (path, query, headers) the request is malformed, whatever the
        # route reads (400, which every operation declares); in the body, its content is (422).
        super().__init__(422 if where[0] == "body" else 400, CODE, DETAIL, errors=errors)


class GuardedRoute(APIRoute):
    """A route whose client text is checked before any of its own work: the head (path, query,
    headers), then the body, read once (`request.body()` is cached for the route's own parse).

    A subclass that answers some requests before FastAPI's handler (the one-statement order)
    overrides `get_handler_behind_guard`, never `get_route_handler`, so that those answers are
    guarded too (tests/ops/test_guarded_routes.py checks it)."""

    checks_body: ClassVar[bool] = True

    def get_route_handler(self) -> RouteHandler:
        handler = self.get_handler_behind_guard()
        checks_body = self.checks_body

        async def guarded(request: Request) -> Response:
            scope = request.scope
            where = unacceptable_in_head(scope)
            if where is None and checks_body:
                body = await request.body()
                if body and not _plainly_acceptable(body):
                    where = unacceptable_in_body(body, _content_type(scope))
            if where is not None:
                raise UnacceptableText(where)
            return await handler(request)

        return guarded

    def get_handler_behind_guard(self) -> RouteHandler:
        """What runs once the request's text is accepted: FastAPI's handler of the route."""
        return super().get_route_handler()


class CleanedBodyRoute(GuardedRoute):
    """The head is guarded; the body reaches the route as sent. For reports that must not be
    lost for their text: a refused processor event would be retried forever and the deposit
    never credited, a refused failure report would leave the order claimed. The route stores
    their text cleaned (`text.clean_text`: NUL and surrogates become U+FFFD)."""

    checks_body = False


class UnacceptableTextFallback(BaseRoute):
    """The app's last route: it takes a request that no route took, when its head holds
    unacceptable text, and refuses it as a guarded route would. Without it, a `/` in a path
    parameter (`/v1/orders/%00/`) would turn the refusal into the router's own answer (a 404, a
    405 for a route's other method, a redirect to the path without its slash). Other requests
    do not match it and get those answers; a request that a route takes never gets here."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and unacceptable_in_head(scope) is not None:
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        where = unacceptable_in_head(scope)
        assert where is not None  # matched above
        raise UnacceptableText(where)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)


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
    query_string: bytes = scope.get("query_string", b"")
    if query_string:
        field = unstorable_form_field(query_string)
        if field is not None:
            return ("query", field)
    # Header values are latin-1 (any byte but NUL is text); the HTTP parser refuses NUL, but
    # nothing below should depend on which server runs the app. Names and values are joined
    # for one search: a test per header was most of the time this function took.
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    if b"\x00" in b"".join(chain.from_iterable(headers)):
        for name, value in headers:
            if b"\x00" in value or b"\x00" in name:
                return ("header", shown(name.decode("latin-1")))
    return None


def _plainly_acceptable(body: bytes) -> bool:
    """ASCII with no `%`, no `\\u` and no NUL: no format read below (JSON, a form, multipart)
    decodes it to unacceptable text, whatever its Content-Type. The usual order's body."""
    return body.isascii() and b"%" not in body and b"\\u" not in body and b"\x00" not in body


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
