"""RFC 9457 problem details for the REST API: one schema, one renderer, the handlers, and the
OpenAPI declarations of every error a route can return."""

from __future__ import annotations

import logging
from collections.abc import Mapping
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
from ordersvc.problem_types import PROBLEM_TYPES, REQUEST_ID_STATE, problem_body

logger = logging.getLogger(__name__)

DECLARED = "x-declared-codes"  # a route's own codes, until `document_problems` writes its responses

PROBLEM_MEDIA_TYPE = "application/problem+json"
WWW_AUTHENTICATE = 'Bearer realm="ordersvc"'


class FieldError(BaseModel):
    loc: list[str | int] = Field(description='Where the problem is, e.g. `["body", "quantity"]`.')
    msg: str
    type: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details. Branch on `code`, which is stable (each operation
    lists the codes it can answer per status, in `x-error-codes`); `title` and `detail` are for
    people."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                problem_body(
                    402,
                    "insufficient_balance",
                    "Insufficient balance.",
                    request_id="5f0c1d2e3a4b5c6d0000000000000001",
                )
            ]
        }
    )

    type: str = Field(
        description="A URI reference to the problem type's page, `/problems/{code}`: HTML for a browser, "
        "JSON (`application/problem+json` fields of the type) for a client."
    )
    title: str = Field(description="What the problem is, the same for every problem of this `code`.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="This occurrence of the problem, for people.")
    code: str = Field(description="Stable machine code: one of `ErrorCode`.")
    request_id: str = Field(
        description="This request's id, as in the `X-Request-ID` header: quote it to support.",
    )
    errors: list[FieldError] | None = Field(
        default=None, description="Per-field errors, for validation problems; absent otherwise."
    )


class CodedHTTPException(StarletteHTTPException):
    """An HTTP error raised below the route (e.g. from `receive`, which FastAPI's body reader
    passes on) that carries its problem's stable code and field errors."""

    def __init__(self, status: int, code: str, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(status, detail)
        self.code = code
        self.errors = errors


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = problem_body(
        status,
        code,
        detail,
        request_id=request.scope.get("state", {}).get(REQUEST_ID_STATE),
        root_path=request.scope.get("root_path", ""),
        errors=errors,
    )
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def problem_responses(*errors: type[ServiceError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the errors a route raises itself (its domain's error
    classes). The errors every route of its kind can answer (credentials, rate limit,
    validation, outage...) are added to the document by `document_problems`, from what the
    operation declares."""
    declared: dict[int, dict[str, str]] = {}
    for error in errors:
        declared.setdefault(error.status, {})[error.code] = error.message
    return {status: {"model": Problem, DECLARED: codes} for status, codes in sorted(declared.items())}


# REST routes that take no credentials: their validation errors are answered as such.
PUBLIC_PATHS = frozenset(
    {
        "/v1/auth/signup",
        "/v1/auth/verify-email",
        "/v1/auth/resend-verification",
        "/v1/auth/login",
        "/v1/auth/password-reset",
        "/v1/auth/password-reset/confirm",
        "/v1/admin/auth/login",
        "/v1/admin/auth/set-password",
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
        return problem_response(request, exc.status, exc.code, exc.message, errors=errors, headers=headers or None)

    async def unauthorized_first(request: Request) -> JSONResponse | None:
        # FastAPI reads and validates the body before the route's dependencies run; without a
        # valid key the answer is still 401, whatever the body.
        path = request.url.path
        if path.startswith("/v1/") and path not in PUBLIC_PATHS and not await request_has_valid_key(request):
            if path.startswith("/v1/admin/"):
                from ordersvc.operators.service import OperatorSessionEnded

                ended = OperatorSessionEnded()
                return problem_response(
                    request, 401, ended.code, ended.message, headers={"WWW-Authenticate": WWW_AUTHENTICATE}
                )
            return problem_response(
                request, 401, InvalidApiKey.code, UNAUTHORIZED_DETAIL, headers={"WWW-Authenticate": WWW_AUTHENTICATE}
            )
        return None

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        if (unauthorized := await unauthorized_first(request)) is not None:
            return unauthorized
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        body_sent = bool(await request.body())
        if (
            body_sent
            and any(e["loc"][:1] == ["body"] for e in errors)
            and not _is_json(request.headers.get("content-type"))
        ):
            # A body the route reads as JSON, sent as something else (text/plain, a form): the
            # media type is what is wrong, not the fields. No body at all is a missing field (422).
            return problem_response(
                request, 415, "unsupported_media_type", "Send the request body as application/json.", errors=errors
            )
        return problem_response(
            request, 422, "validation_error", "The request is not valid: see errors.", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, CodedHTTPException):
            return problem_response(
                request, exc.status_code, exc.code, str(exc.detail), errors=exc.errors, headers=exc.headers
            )
        if exc.status_code == 400:  # FastAPI's "error parsing the body": a validation problem like any other
            if (unauthorized := await unauthorized_first(request)) is not None:
                return unauthorized
            errors = [{"loc": ["body"], "msg": str(exc.detail), "type": "json_invalid"}]
            return problem_response(
                request, 422, "validation_error", "The request body is not valid JSON.", errors=errors
            )
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status_code, "http_error")
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return problem_response(request, exc.status_code, code, str(exc.detail), headers=headers)

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        # Handled here (not by the catch-all below, which re-raises to the server and makes it
        # drop the connection): an outage is answered, and the connection kept.
        if not is_database_unavailable(exc):
            raise exc
        logger.warning(
            "database unavailable on %s %s: %s", request.method, loggable_path(request.scope), exc.__class__.__name__
        )
        return problem_response(
            request,
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
            request,
            500,
            "internal_error",
            "Something went wrong on our side.",
            headers=_cors_headers(request, cors_origins),
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


EXAMPLE_REQUEST_ID = "5f0c1d2e3a4b5c6d0000000000000001"
SAFE_METHODS = frozenset({"get", "head", "options"})


def _automatic_codes(method: str, operation: Mapping[str, Any]) -> dict[int, dict[str, str]]:
    """The problems any operation of its kind can answer, whatever the route does: a request
    head with unstorable text, an outage; with credentials, a bad credential, and for a
    customer's, the rate limit and (a change by a browser session) the CSRF check; with input,
    its validation; with a JSON body, its media type and size."""
    codes: dict[int, dict[str, str]] = {400: {"invalid_text": ""}, 503: {"service_unavailable": "", "timeout": ""}}
    schemes = {name for requirement in operation.get("security", []) for name in requirement}
    if schemes:
        codes[401] = {"unauthorized": ""}
    if "sessionCookie" in schemes:
        codes[429] = {"rate_limited": ""}
        if method not in SAFE_METHODS:
            codes[403] = {"csrf_failed": ""}
    body = operation.get("requestBody")
    if operation.get("parameters") or body:
        codes[422] = {"validation_error": ""}
    if body and "application/json" in body.get("content", {}):
        codes[422]["invalid_text"] = ""
        codes[413] = {"body_too_large": ""}
        codes[415] = {"unsupported_media_type": ""}
    return codes


def _problem_response(status: int, codes: Mapping[str, str]) -> dict[str, Any]:
    """One error response of an operation: its codes (in `x-error-codes`, and as a list in the
    description), each with an example."""
    types = {code: PROBLEM_TYPES[code] for code in codes}
    examples = {
        code: {
            "summary": problem_type.title,
            "value": problem_body(status, code, codes[code] or problem_type.about, request_id=EXAMPLE_REQUEST_ID),
        }
        for code, problem_type in types.items()
    }
    return {
        "description": "\n".join(f"- `{code}`: {problem_type.title}." for code, problem_type in types.items()),
        "x-error-codes": list(types),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}, "examples": examples}},
    }


HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "This request's id: the one the request sent in `X-Request-ID` (1-128 of `A-Za-z0-9._:-`), "
        "or a new one. It is on every log line of the request and in every problem document (`request_id`).",
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'IETF `RateLimit` field (draft-ietf-httpapi-ratelimit-headers): `"burst";r=<requests '
        'left>;t=<seconds until the bucket is full again>`, e.g. `"burst";r=17;t=3`. Sent when the request was '
        "counted against its API key's or session's rate limit.",
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": 'IETF `RateLimit-Policy` field: `"burst";q=<requests>;w=<seconds>`, e.g. `"burst";q=20;w=2`: '
        "a token bucket of `q` requests, refilled in `w` seconds.",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "WWW-Authenticate": {
        "description": 'The scheme to authenticate with: `Bearer realm="ordersvc"`.',
        "schema": {"type": "string"},
    },
}


def _headers_of(status: str, schemes: set[str]) -> dict[str, Any]:
    """The response headers of an answer with this status, for an operation of these schemes."""
    names = ["X-Request-ID"]
    if "sessionCookie" in schemes and status not in {"401", "503"}:
        names += ["RateLimit", "RateLimit-Policy"]
    if status in {"429", "503"}:
        names.append("Retry-After")
    if status == "401":
        names.append("WWW-Authenticate")
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Every operation's error responses, from the codes its route declares
    (`problem_responses`) and those its kind always can answer (`_automatic_codes`): each
    status lists its codes, is sent as `application/problem+json`, and has an example per
    code; `Problem.code` is the `ErrorCode` enum of every code. And every response's headers:
    `X-Request-ID` always, the rate limit's where one is counted, `Retry-After` on 429 and 503,
    `WWW-Authenticate` on 401."""
    for path in schema.get("paths", {}).values():
        for method, operation in path.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            codes = _automatic_codes(method, operation)
            for status, response in list(responses.items()):
                if status[0] in "45":
                    for code, detail in response.pop(DECLARED, {}).items():
                        codes.setdefault(int(status), {})[code] = detail
                    del responses[status]
            for error_status, status_codes in codes.items():
                responses[str(error_status)] = _problem_response(error_status, status_codes)
            schemes = {name for requirement in operation.get("security", []) for name in requirement}
            for status, response in responses.items():
                response["headers"] = {**response.get("headers", {}), **_headers_of(status, schemes)}
            operation["responses"] = dict(sorted(responses.items()))
    schema.setdefault("components", {})["headers"] = HEADERS
    components = schema["components"].setdefault("schemas", {})
    components["ErrorCode"] = {
        "type": "string",
        "enum": sorted(PROBLEM_TYPES),
        "description": "Every problem `code`; `GET /problems/{code}` explains each one.",
    }
    components["Problem"]["properties"]["code"] = {"$ref": "#/components/schemas/ErrorCode"}
    return schema
