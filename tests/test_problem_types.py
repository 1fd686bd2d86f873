"""Problem details carry a catalogued code: a title that describes the problem, a `type` that
resolves to a page explaining it (HTML for a browser, JSON for a client), and the request id."""

from __future__ import annotations

from http import HTTPStatus

import httpx
import pytest

from ordersvc.config import Settings
from ordersvc.errors import Conflict, ServiceError
from ordersvc.main import create_app
from ordersvc.problem_types import LEGACY_ONLY, PROBLEM_TYPES
from tests.conftest import MakeCustomer

# Codes the HTTP layer answers itself (problems.py, ops/middleware.py, ops/client_text.py).
HTTP_LAYER = {
    "validation_error",
    "unsupported_media_type",
    "not_found",
    "method_not_allowed",
    "body_too_large",
    "http_error",
    "service_unavailable",
    "timeout",
    "internal_error",
    "invalid_text",
}


# Bases only, never raised themselves (each subclass has its own code).
ABSTRACT = {ServiceError, Conflict}


def error_classes() -> list[type[ServiceError]]:
    create_app(Settings())  # every domain's errors imported
    found: list[type[ServiceError]] = []
    pending: list[type[ServiceError]] = [ServiceError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_every_code_the_service_raises_is_catalogued_with_its_status() -> None:
    for cls in error_classes():
        if cls.code in LEGACY_ONLY or cls in ABSTRACT:
            continue
        assert cls.code in PROBLEM_TYPES, f"{cls.__module__}.{cls.__qualname__}: {cls.code}"
        assert PROBLEM_TYPES[cls.code].status == cls.status, f"{cls.__qualname__}: {cls.code}"


def test_every_catalogued_code_is_raised_somewhere() -> None:
    raised = {cls.code for cls in error_classes()} | HTTP_LAYER
    assert set(PROBLEM_TYPES) - raised == set()


def test_titles_describe_the_problem_not_the_status() -> None:
    for code, problem_type in PROBLEM_TYPES.items():
        assert problem_type.title.lower() != HTTPStatus(problem_type.status).phrase.lower(), code
        assert len(problem_type.about) > 20, code


class TestLiveProblems:
    async def test_a_problem_carries_its_title_request_id_and_a_type_that_resolves(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer()
        response = await client.post(
            "/v1/orders",
            json={"email": "x@example.com", "quantity": 1000},
            headers={"Authorization": f"Bearer {customer.api_key}", "X-Request-ID": "support-ticket-42"},
        )
        assert response.status_code == 402
        problem = response.json()
        assert problem == {
            "type": "/problems/insufficient_balance",
            "title": "Balance too low",
            "status": 402,
            "detail": "Insufficient balance.",
            "code": "insufficient_balance",
            "request_id": "support-ticket-42",
        }
        assert response.headers["x-request-id"] == problem["request_id"]

        page = await client.get(problem["type"], headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "<h1>Balance too low</h1>" in page.text
        described = await client.get(problem["type"])
        assert described.headers["content-type"] == "application/json"
        assert described.json() == {
            "type": "/problems/insufficient_balance",
            "code": "insufficient_balance",
            "title": "Balance too low",
            "status": 402,
            "description": PROBLEM_TYPES["insufficient_balance"].about,
        }

    async def test_every_problem_type_has_its_page(self, client: httpx.AsyncClient) -> None:
        index = await client.get("/problems")
        assert [t["code"] for t in index.json()["data"]] == sorted(PROBLEM_TYPES)
        html_index = await client.get("/problems", headers={"Accept": "text/html"})
        for code in PROBLEM_TYPES:
            assert f'href="/problems/{code}"' in html_index.text
            assert (await client.get(f"/problems/{code}")).json()["code"] == code

    async def test_an_unknown_type_is_a_problem_itself(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/problems/no_such_code")
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
        assert response.json()["request_id"] == response.headers["x-request-id"]

    @pytest.mark.parametrize("accept", ["text/html", "application/json"])
    async def test_html_is_escaped_and_cacheable(self, client: httpx.AsyncClient, accept: str) -> None:
        response = await client.get("/problems/invalid_address", headers={"Accept": accept})
        assert response.headers["cache-control"] == "public, max-age=3600"
        assert response.headers["vary"] == "Accept"
        if accept == "text/html":
            assert "<code>:_.-</code>" in response.text
