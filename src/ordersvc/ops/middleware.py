"""The request context, as one plain ASGI middleware around the whole app:

- a request id (`X-Request-ID` in, or a new one) on the response and on every log line of the
  request;
- one structured access-log line per request, without the query's secrets;
- HTTP metrics by route template (never by raw path: unknown paths are one label);
- a body-size limit (413) and a time limit (503; the transaction is rolled back);
- the rate-limit headers of the request's bucket, if it took one.

Plain ASGI rather than BaseHTTPMiddleware: nothing is buffered, and the cost per request is a
few function calls."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import re
import secrets
import time
from typing import Any

import structlog
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ordersvc.logging_config import log_request, loggable_path, redact_query_string
from ordersvc.ops import metrics
from ordersvc.ops.dberrors import RETRY_AFTER_SECONDS
from ordersvc.problem_types import REQUEST_ID_STATE, problem_body
from ordersvc.text import is_ascii_digits

stdlib_logger = logging.getLogger(__name__)

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# The legacy endpoint: its own, smaller body limit and its own error format (HTTP 200).
LEGACY_PATHS = frozenset({"/api", "/api/"})


class BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` when a body without (or beyond) its Content-Length grows too large.
    An HTTPException, so that FastAPI's body reader passes it through to the problem handlers."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")


def _problem(scope: Scope, status: int, code: str, detail: str) -> tuple[int, bytes, bytes]:
    body = problem_body(
        status, code, detail, request_id=scope["state"].get(REQUEST_ID_STATE), root_path=scope.get("root_path", "")
    )
    return status, json.dumps(body).encode(), b"application/problem+json"


KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CLIENT_CLOSED_REQUEST = 499  # nginx's status for the access log and metrics; never sent
DEADLINE = "request_deadline"  # the request's asyncio.Timeout, in its state (see db.request_transaction)


class _RequestIds:
    """32 hex characters, unique across processes and restarts: a random half drawn once per
    process (again in a forked child), then a counter: a fifth of the cost of a uuid4."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


new_request_id = _RequestIds()

# The metrics' series by (method, route template, status), each found once: the labels come from
# fixed sets (known methods, the app's routes, HTTP statuses), so this stays small.
_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}


class RequestContextMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, timeout_seconds: float, cors_origins: list[str] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.timeout_seconds = timeout_seconds
        self.cors_origins = cors_origins or []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and REQUEST_ID.fullmatch(incoming) else new_request_id()
        # Shared with the request: copies of the scope made by the router keep this same dict.
        state: dict[str, Any] = scope.setdefault("state", {})
        state[REQUEST_ID_STATE] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_context(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                decision = state.get("rate_limit")
                if decision is not None:
                    for name, value in decision.headers().items():
                        headers[name] = value
            await send(message)

        path: str = scope["path"]
        receive_limited = receive
        if path not in LEGACY_PATHS:
            declared = _header(scope, b"content-length")
            if declared is not None and (not is_ascii_digits(declared) or int(declared) > self.max_body_bytes):
                await self._answer(scope, send_with_context, *self._too_large(scope), self._cors(scope))
                self._log(scope, request_id, 413, started)
                return
            receive_limited = self._limit(receive)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                async with asyncio.timeout(self.timeout_seconds) as deadline:
                    # The session lifts the deadline when it starts to commit: a request whose
                    # transaction may have committed is never answered "not completed".
                    state[DEADLINE] = deadline
                    await self.app(scope, receive_limited, send_with_context)
            except BodyTooLarge:
                if not response_started:
                    await self._answer(scope, send_with_context, *self._too_large(scope), self._cors(scope))
            except ClientDisconnect:
                # The connection closed while the body was being read (the client left, or the
                # server refused the rest of it): nobody to answer, nothing went wrong here.
                status = CLIENT_CLOSED_REQUEST
                stdlib_logger.info("client disconnected during %s %s", scope["method"], loggable_path(scope))
            except TimeoutError:
                stdlib_logger.warning(
                    "request timed out after %ss: %s %s", self.timeout_seconds, scope["method"], loggable_path(scope)
                )
                if not response_started:
                    if path in LEGACY_PATHS:  # old clients read errors from 200 answers
                        await self._answer(
                            scope, send_with_context, 200, b'{"error":"Request timed out."}', b"application/json"
                        )
                    else:
                        await self._answer(
                            scope,
                            send_with_context,
                            *_problem(
                                scope, 503, "timeout", "The request took too long and was not completed; retry it."
                            ),
                            [(b"retry-after", str(RETRY_AFTER_SECONDS).encode()), *self._cors(scope)],
                        )
            except Exception:
                # Answered here rather than by Starlette's outermost handler, so that the answer
                # and the traceback's log line carry the request id.
                stdlib_logger.exception("unhandled error on %s %s", scope["method"], loggable_path(scope))
                if not response_started:
                    status_, body, content_type = _problem(
                        scope, 500, "internal_error", "Something went wrong on our side."
                    )
                    await self._answer(scope, send_with_context, status_, body, content_type, self._cors(scope))
            finally:
                self._log(scope, request_id, status, started)

    def _too_large(self, scope: Scope) -> tuple[int, bytes, bytes]:
        return _problem(scope, 413, "body_too_large", f"The request body is larger than {self.max_body_bytes} bytes.")

    def _limit(self, receive: Receive) -> Receive:
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        return receive_limited

    def _cors(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        """CORS headers for an answer made here, outside CORSMiddleware (a browser app would
        otherwise see a CORS failure instead of the problem)."""
        origin = _header(scope, b"origin")
        if origin is not None and origin in self.cors_origins:
            return [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
        return []

    @staticmethod
    async def _answer(
        scope: Scope,
        send: Send,
        status: int,
        body: bytes,
        content_type: bytes,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers + (extra_headers or [])})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _log(scope: Scope, request_id: str, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        route = scope.get("route")
        template = getattr(route, "path", None) or ("unmatched" if status == 404 else "other")
        # Labels from a fixed set: a client inventing methods cannot create new series.
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
        series = _series.get((method, template, status))
        if series is None:
            series = _series[(method, template, status)] = (
                metrics.HTTP_REQUESTS.labels(method, template, str(status)),
                metrics.HTTP_LATENCY.labels(method, template),
            )
        series[0].inc()
        series[1].observe(elapsed)
        client = scope.get("client")
        log_request(
            request_id=request_id,
            method=scope["method"][:16],
            path=loggable_path(scope),
            query=redact_query_string(scope.get("query_string", b"").decode("latin-1")),
            route=template,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
            client=client[0] if client else None,
        )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


class HeadAsGetMiddleware:
    """HEAD wherever GET is: a HEAD request is answered as its GET would be, headers only
    (RFC 9110, 9.3.2). FastAPI routes answer the methods they declare, and declaring HEAD beside
    every GET would put a second operation of each in the OpenAPI document. The legacy API's
    paths (`exempt`) keep HTTP's 405 for HEAD, as its contract says."""

    def __init__(self, app: ASGIApp, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]  # uvicorn's path includes the root path
        if scope["type"] != "http" or scope["method"] != "HEAD" or path in self.exempt:
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        as_get = {**scope, "method": "GET"}
        try:
            await self.app(as_get, receive, headers_only)
        finally:
            if "route" in as_get:  # the route the router matched, for the access log and metrics
                scope["route"] = as_get["route"]
