"""Typed service errors. Each carries its HTTP status and a stable machine code.

Messages are the exact strings of the legacy contract where one exists, so the legacy API can
render `{"error": message}` and the REST API the same text as `detail`.
"""

from __future__ import annotations


class ServiceError(Exception):
    status: int = 400
    code: str = "bad_request"
    message: str = "Bad request."
    # The request field the error is about, when there is one (REST reports it per field).
    field: str | None = None

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)


class InvalidParams(ServiceError):
    status = 422
    code = "invalid_params"
    message = "Invalid params."


class InvalidApiKey(ServiceError):
    status = 401
    code = "unauthorized"
    message = "Invalid key."


class NotFound(ServiceError):
    status = 404
    code = "not_found"
    message = "Not found."


class Conflict(ServiceError):
    status = 409
    code = "conflict"
    message = "Conflict."
