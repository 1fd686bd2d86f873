"""`POST /api/v2`: the panel API v2 dialect that reseller panels share, over the same services
as every other interface (docs/panel-api.md).

Form fields (or a JSON object) `key` and `action`; every answer is HTTP 200 JSON, a refusal
`{"error": "..."}` in the dialect's words (`errors.text`). Order ids are integers: the public
id's 8 hex characters read as a number (`ids`), so an order is the same order in every API. The
key is read from the body only (never from the URL, which proxies log)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ordersvc.bodies import read_body
from ordersvc.errors import ServiceError
from ordersvc.legacy.endpoint import ErrorBodyRoute
from ordersvc.legacy.params import parse_body
from ordersvc.ops.dberrors import is_database_unavailable
from ordersvc.panel import actions
from ordersvc.panel.errors import IncorrectRequest, text
from ordersvc.panel.wire import answer

PANEL_PATHS = ("/api/v2", "/api/v2/")
WRONG_METHODS = ["GET", "PUT", "DELETE", "PATCH"]

Action = Callable[[Request, object, dict[str, Any]], Awaitable[Response]]
ACTIONS: dict[str, Action] = {
    "services": actions.services,
    "add": actions.add,
    "status": actions.status,
    "cancel": actions.cancel,
    "balance": actions.balance,
    "refill": actions.refill,
    "refill_status": actions.refill_status,
}


class PanelRoute(ErrorBodyRoute):
    """Every refusal as HTTP 200 `{"error": "..."}` in the dialect's words; a database outage
    or a lock waited for too long too (the words every other API uses for it)."""

    api_name = "panel"

    def error_text(self, error: Exception) -> str | None:
        if isinstance(error, ServiceError | TimeoutError) or is_database_unavailable(error):
            return text(error)
        return None


router = APIRouter(route_class=PanelRoute)


@router.post(PANEL_PATHS[1], include_in_schema=False)
@router.post(PANEL_PATHS[0], include_in_schema=False)
async def panel_api(request: Request) -> Response:
    raw = await read_body(request, request.app.state.settings.legacy_max_body_bytes)
    body = None if raw is None else await parse_body(raw, request.headers)
    if body is None:
        raise IncorrectRequest()
    key, action_name = body.get("key"), body.get("action")
    action = ACTIONS.get(action_name) if isinstance(action_name, str) else None
    if action is None:
        await actions.check_key(request, key)  # the key's refusal first
        raise IncorrectRequest()
    return await action(request, key, body)


@router.api_route(PANEL_PATHS[0], methods=WRONG_METHODS, include_in_schema=False)
@router.api_route(PANEL_PATHS[1], methods=WRONG_METHODS, include_in_schema=False)
async def panel_wrong_method() -> Response:
    response = answer({"error": IncorrectRequest.message})
    response.headers["Allow"] = "POST"
    return response
