"""`POST /api`: the legacy action API, byte-compatible with the old PHP, Python and curl clients.

The contract (`legacy-api-reference.txt`) fixes the error strings and their precedence:
unreadable body -> `Invalid params.`; key -> `Invalid key.`; action -> `Invalid params.` /
`Unknown action.`; then the action's own checks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from ordersvc.accounts import service as accounts
from ordersvc.bodies import read_body
from ordersvc.db import request_transaction
from ordersvc.errors import InvalidParams, ServiceError
from ordersvc.legacy import render
from ordersvc.legacy.actions import ACTIONS, READS, place_order
from ordersvc.legacy.params import find_key, parse_body
from ordersvc.ops import ratelimit
from ordersvc.ops.dberrors import UNAVAILABLE_MESSAGE, is_database_unavailable

logger = logging.getLogger(__name__)


class UnknownAction(ServiceError):
    code = "unknown_action"
    message = "Unknown action."


class ErrorBodyRoute(APIRoute):
    """Renders service errors and database outages as HTTP 200 `{"error": "..."}` (old clients
    read every answer as JSON), after the request's transaction has rolled back: the legacy API's
    route, and the panel API's (`panel.endpoint`) with words of its own (`error_text`)."""

    api_name: ClassVar[str] = "legacy"

    def error_text(self, error: Exception) -> str | None:
        """The words of a refusal or an outage; None for anything else (a bug: it is raised)."""
        if isinstance(error, ServiceError):
            return error.message
        return UNAVAILABLE_MESSAGE if is_database_unavailable(error) else None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                words = self.error_text(exc)
                if words is None:
                    raise
                if not isinstance(exc, ServiceError):
                    logger.warning("database unavailable on the %s API: %s", self.api_name, exc.__class__.__name__)
                return render.error(words)

        return handle


LegacyRoute = ErrorBodyRoute


router = APIRouter(route_class=LegacyRoute)

# "/api/" too: a client that saved the endpoint with a trailing slash must not get a redirect,
# which old PHP clients report as "Connection error".
LEGACY_PATHS = ("/api", "/api/")
# Old clients read every answer as JSON with `error`: a wrong method is an unreadable request,
# like an unreadable body (HTTP 200, `Allow: POST` for whoever looks). HEAD and OPTIONS keep
# HTTP's 405. Declared after POST: the busiest route is matched first.
WRONG_METHODS = ["GET", "PUT", "DELETE", "PATCH"]


@router.post(LEGACY_PATHS[1], include_in_schema=False)
@router.post(LEGACY_PATHS[0], include_in_schema=False)
async def legacy_api(request: Request) -> Response:
    raw = await read_body(request, request.app.state.settings.legacy_max_body_bytes)
    body = None if raw is None else await parse_body(raw, request.headers)
    if body is None:
        raise InvalidParams()
    key = find_key(request, body)
    action_name = body.get("action")
    if action_name == "order":
        return await place_order(request, key, body)  # checks its key in its own statement
    read = READS.get(action_name) if isinstance(action_name, str) else None
    if read is not None:
        return await read(request, key, body)  # checks its key in its own statement, too
    async with request_transaction(request) as session:
        account = await accounts.authenticate(session, api_key=key)
        assert isinstance(key, str)
        await ratelimit.enforce_key(request, key)  # {"error":"Too many requests."}, HTTP 200 like every legacy error
        if not isinstance(action_name, str):
            raise InvalidParams()
        action = ACTIONS.get(action_name)
        if action is None:
            raise UnknownAction()
        return await action(session, account, body)


@router.api_route(LEGACY_PATHS[0], methods=WRONG_METHODS, include_in_schema=False)
@router.api_route(LEGACY_PATHS[1], methods=WRONG_METHODS, include_in_schema=False)
async def legacy_wrong_method() -> Response:
    response = render.error(InvalidParams.message)
    response.headers["Allow"] = "POST"
    return response
