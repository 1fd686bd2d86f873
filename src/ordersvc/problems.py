"""RFC 9457 problem details for the REST API: one schema, one renderer, the handlers, and the
OpenAPI declarations of every error a route can return."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from ordersvc.accounts.auth import UNAUTHORIZED_DETAIL, request_has_valid_key
from ordersvc.errors import InvalidApiKey, ServiceError
from ordersvc.logging_config import loggable_path
from ordersvc.ops.dberrors import (
    DATABASE_ERROR_CLASSES,
    RETRY_AFTER_SECONDS,
    UNAVAILABLE_MESSAGE,
    is_database_unavailable,
)

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
WWW_AUTHENTICATE = 'Bearer realm="ordersvc"'


class FieldError(BaseModel):
    loc: list[str | int] = Field(description='Where the problem is, e.g. `["body", "quantity"]`.')
    msg: str
    type: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details. Branch on `code`, which is stable; `title` and
    `detail` are for people."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "/problems/insufficient_balance",
                    "title": "Payment Required",
                    "status": 402,
                    "detail": "Insufficient balance.",
                    "code": "insufficient_balance",
                }
            ]
        }
    )

    type: str = Field(description="A URI reference naming the problem type: `/problems/{code}`.")
    title: str
    status: int
    detail: str
    code: str = Field(
        description="Stable machine code: `unauthorized`, `not_found`, `validation_error`, `invalid_email`, "
        "`invalid_quantity`, `invalid_text`, `insufficient_balance`, `idempotency_conflict`, `invalid_cursor`, ..."
    )
    errors: list[FieldError] | None = Field(default=None, description="Per-field errors, for validation problems.")


class CodedHTTPException(StarletteHTTPException):
    """An HTTP error raised below the route (e.g. from `receive`, which FastAPI's body reader
    passes on) that carries its problem's stable code and field errors."""

    def __init__(self, status: int, code: str, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(status, detail)
        self.code = code
        self.errors = errors


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


_DESCRIPTIONS = {
    400: "The link's token is not valid or was already used (`invalid_token`).",
    401: "Missing, unknown or revoked API key or session; at sign-in, wrong credentials or a second factor "
    "needed (`invalid_credentials`, `totp_required`, `invalid_totp_code`).",
    402: "The balance does not cover the price (`insufficient_balance`).",
    403: "Refused for this caller: a change sent with a session cookie but no CSRF token (`csrf_failed`), a "
    "wrong current password (`wrong_password`), an unverified or disabled account.",
    404: "No such object for this account.",
    409: "Conflict, e.g. an Idempotency-Key reused with another body (`idempotency_conflict`).",
    410: "The link has expired (`expired_token`): ask for a new one.",
    422: "Invalid request: see `code` and `errors` (`invalid_text` for a NUL, an unpaired surrogate or invalid "
    "UTF-8 anywhere in the request).",
    429: "Too many requests for this API key (`rate_limited`), or too many sign-in attempts or mail "
    "requests (`too_many_attempts`): wait `Retry-After` seconds.",
    503: "Temporarily unavailable (`service_unavailable`, `timeout`): retry after `Retry-After` seconds; "
    "an `Idempotency-Key` makes the retry safe.",
}


def problem_responses(*statuses: int, public: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for these error statuses. 401, 403, 422, 429 and 503 are
    always added (every authenticated route can answer them: 403 for a change made with a
    session cookie but no CSRF token); for a `public` route (no credentials), only 422 and 503."""
    always = {422, 503} if public else {401, 403, 422, 429, 503}
    return {status: {"model": Problem, "description": _DESCRIPTIONS[status]} for status in sorted({*always, *statuses})}


# REST routes that take no credentials: their validation errors are answered as such.
PUBLIC_PATHS = frozenset(
    {
        "/v1/auth/signup",
        "/v1/auth/verify-email",
        "/v1/auth/resend-verification",
        "/v1/auth/login",
        "/v1/auth/password-reset",
        "/v1/auth/password-reset/confirm",
    }
)


def _is_json(content_type: str | None) -> bool:
    """application/json, or a `+json` type such as application/merge-patch+json."""
    media = (content_type or "").partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def install_problem_handlers(app: FastAPI, cors_origins: list[str]) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        errors = None
        if exc.field is not None:
            errors = [{"loc": ["body", exc.field], "msg": exc.message, "type": exc.code}]
        headers = {"WWW-Authenticate": WWW_AUTHENTICATE} if exc.status == 401 else {}
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return problem_response(exc.status, exc.code, exc.message, errors=errors, headers=headers or None)

    async def unauthorized_first(request: Request) -> JSONResponse | None:
        # FastAPI reads and validates the body before the route's dependencies run; without a
        # valid key the answer is still 401, whatever the body.
        path = request.url.path
        if path.startswith("/v1/") and path not in PUBLIC_PATHS and not await request_has_valid_key(request):
            return problem_response(
                401, InvalidApiKey.code, UNAUTHORIZED_DETAIL, headers={"WWW-Authenticate": WWW_AUTHENTICATE}
            )
        return None

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        if (unauthorized := await unauthorized_first(request)) is not None:
            return unauthorized
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        if any(e["loc"][:1] == ["body"] for e in errors) and not _is_json(request.headers.get("content-type")):
            # A body the route reads as JSON, sent as something else (text/plain, a form): the
            # media type is what is wrong, not the fields.
            return problem_response(
                415, "unsupported_media_type", "Send the request body as application/json.", errors=errors
            )
        return problem_response(422, "validation_error", "The request is not valid: see errors.", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, CodedHTTPException):
            return problem_response(exc.status_code, exc.code, str(exc.detail), errors=exc.errors, headers=exc.headers)
        if exc.status_code == 400:  # FastAPI's "error parsing the body": a validation problem like any other
            if (unauthorized := await unauthorized_first(request)) is not None:
                return unauthorized
            errors = [{"loc": ["body"], "msg": str(exc.detail), "type": "json_invalid"}]
            return problem_response(422, "validation_error", "The request body is not valid JSON.", errors=errors)
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status_code, "http_error")
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return problem_response(exc.status_code, code, str(exc.detail), headers=headers)

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        # Handled here (not by the catch-all below, which re-raises to the server and makes it
        # drop the connection): an outage is answered, and the connection kept.
        if not is_database_unavailable(exc):
            raise exc
        logger.warning(
            "database unavailable on %s %s: %s", request.method, loggable_path(request.scope), exc.__class__.__name__
        )
        return problem_response(
            503,
            "service_unavailable",
            UNAVAILABLE_MESSAGE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS), **_cors_headers(request, cors_origins)},
        )

    for error_class in DATABASE_ERROR_CLASSES:
        app.add_exception_handler(error_class, database_error)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        # Logged with its traceback (and re-raised by Starlette to the server's log): the
        # client gets a problem document, the operator gets the cause.
        logger.exception("unhandled error on %s %s", request.method, loggable_path(request.scope))
        return problem_response(
            500, "internal_error", "Something went wrong on our side.", headers=_cors_headers(request, cors_origins)
        )


def allowed_methods(request: Request) -> str:
    """Every method the request's path answers to. Starlette's 405 names only the first route
    of the path, so a path served by two routes (GET and POST) advertised one of them."""
    path = request.scope["path"]
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.methods and route.path and compile_path(route.path)[0].fullmatch(path):
            methods |= route.methods
    return ", ".join(sorted(methods))


def _cors_headers(request: Request, cors_origins: list[str]) -> dict[str, str]:
    """The exception handler runs outside CORSMiddleware: without its header a browser app would
    see a CORS failure instead of the problem document."""
    origin = request.headers.get("origin")
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin in cors_origins else {}


def use_problem_media_type(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare error responses as `application/problem+json` (what they are sent as) instead
    of FastAPI's default `application/json`; and the 415 of every operation that reads a JSON
    body (`validation_error`'s answer to a body sent as another media type)."""
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                operation["responses"].setdefault(
                    "415",
                    {
                        "description": "The body was not sent as `application/json` (`unsupported_media_type`).",
                        "content": problem,
                    },
                )
                operation["responses"] = dict(sorted(operation["responses"].items()))
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[0] in "45" and "application/json" in content:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
    return schema
