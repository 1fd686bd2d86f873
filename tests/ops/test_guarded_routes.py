"""Every route declares how its client text is checked, so that a new router cannot forget it:
`GuardedRoute` (path, query and headers refused with 400 `invalid_text`, the body with 422,
before the route runs), `CleanedBodyRoute` (the head guarded, the body stored cleaned by the route), or a route
class that reads its text itself (the legacy `/api`). The walk covers included routers and
mounted apps; the guard of each route is then exercised through the app."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute, Mount, Route

from ordersvc.config import Settings
from ordersvc.legacy.endpoint import LegacyRoute
from ordersvc.main import create_app
from ordersvc.ops.client_text import CleanedBodyRoute, GuardedRoute, UnacceptableTextFallback
from ordersvc.orders import endpoints as order_endpoints
from ordersvc.panel.endpoint import PanelRoute
from tests.conftest import MakeCustomer
from tests.orders.test_endpoints import auth

# The legacy contract and the panel API v2 answer every refusal themselves (HTTP 200
# `{"error": ...}`), and their parser replaces unstorable values (legacy/params.py): their route
# classes are not the guard, on purpose.
READS_ITS_OWN_TEXT: tuple[type[APIRoute], ...] = (LegacyRoute, PanelRoute)

JSON = {"Content-Type": "application/json"}


def routes_of(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route the app can dispatch to: included routers flattened, mounts walked."""
    for context in iter_route_contexts(routes):
        route = context.original_route
        if isinstance(route, Mount):
            inner = route.routes  # a mounted router or app; a mounted static directory has none
            if inner:
                yield from routes_of(list(inner))
                continue
        yield route


def is_fastapis_own(route: BaseRoute) -> bool:
    """FastAPI's documentation routes (/openapi.json, /docs, /redoc): no client text reaches
    a service there."""
    return (
        isinstance(route, Route)
        and not isinstance(route, APIRoute)
        and getattr(route.endpoint, "__module__", "") == "fastapi.applications"
    )


def undeclared(app: FastAPI) -> list[str]:
    """Routes that neither guard their text nor declare that they read it themselves."""
    return [
        f"{type(route).__name__} {getattr(route, 'path', route)}"
        for route in routes_of(app.routes)
        if not is_fastapis_own(route)
        and not isinstance(route, (GuardedRoute, UnacceptableTextFallback, *READS_ITS_OWN_TEXT))
    ]


def guarded_routes(app: FastAPI) -> list[GuardedRoute]:
    return [route for route in routes_of(app.routes) if isinstance(route, GuardedRoute)]


def request_for(route: APIRoute) -> tuple[str, str]:
    """A method and a URL that this route matches."""
    method = sorted(route.methods - {"HEAD"})[0]
    url = route.path_format
    for name in route.param_convertors:
        url = url.replace("{" + name + "}", "x")
    return method, url


def assert_invalid_text(response: httpx.Response, loc: list[str | int], label: str) -> None:
    # The request head (path, query, headers) is malformed: 400; the body's content: 422.
    expected_status = 422 if loc[0] == "body" else 400
    assert response.status_code == expected_status, f"{label}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/problem+json", label
    problem = response.json()
    assert (problem["code"], problem["type"]) == ("invalid_text", "/problems/invalid_text"), label
    assert problem["errors"][0]["loc"] == loc, label


class TestEveryRouteDeclaresItsText:
    def test_the_app_has_no_route_without_a_declaration(self, app: FastAPI) -> None:
        assert undeclared(app) == []

    def test_the_walk_sees_every_router_and_mount(self, app: FastAPI) -> None:
        paths = {getattr(route, "path", None) for route in routes_of(app.routes)}
        assert {"/api", "/v1/orders", "/v1/fulfilment/orders/{order_id}/fail", "/webhooks/chain"} <= paths
        assert {"/consent/{action}/{token}", "/", "/healthz"} <= paths

    def test_a_forgotten_router_or_mount_is_found(self) -> None:
        app = create_app(Settings(mailer_in_serve=False))
        forgotten = APIRouter(prefix="/v1/new")

        @forgotten.get("/things/{name}")
        async def things(name: str) -> dict[str, str]:
            return {"name": name}

        app.include_router(forgotten)
        sub = FastAPI()  # its own documentation routes are FastAPI's, like the app's

        @sub.post("/other")
        async def other() -> dict[str, str]:
            return {}

        app.mount("/mounted", sub)
        assert undeclared(app) == ["APIRoute /v1/new/things/{name}", "APIRoute /other"]

    def test_the_raw_bodies_are_declared_by_their_routes(self, app: FastAPI) -> None:
        cleaned = {route.path for route in guarded_routes(app) if isinstance(route, CleanedBodyRoute)}
        assert cleaned == {
            "/v1/fulfilment/orders/{order_id}/fail",
            "/webhooks/chain",
            "/webhooks/nowpayments",
            "/webhooks/btcpay",
        }

    def test_no_route_class_steps_around_the_guard(self, app: FastAPI) -> None:
        # A subclass answers early through get_handler_behind_guard (the order's early parse),
        # never by replacing get_route_handler, which is the guard itself.
        classes = {type(route) for route in guarded_routes(app)}
        assert order_endpoints.OrderCreateRoute in classes
        for route_class in classes:
            assert route_class.get_route_handler is GuardedRoute.get_route_handler, route_class


class TestEveryGuardedRouteRefuses:
    """Each route of the app, through the app: the guard answers before the route's own work
    (no credentials are needed to be refused)."""

    async def test_a_nul_in_a_header(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        for route in guarded_routes(app):
            method, url = request_for(route)
            response = await client.request(method, url, headers={"x-hostile": b"a\x00b"})
            assert_invalid_text(response, ["header", "x-hostile"], f"{method} {route.path}")

    async def test_a_query_that_is_not_utf8(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        for route in guarded_routes(app):
            method, url = request_for(route)
            response = await client.request(method, f"{url}?q=%ED%A0%80")
            assert_invalid_text(response, ["query", "q"], f"{method} {route.path}")

    async def test_a_nul_in_the_path(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        for route in guarded_routes(app):
            if not route.param_convertors:
                continue
            method, url = request_for(route)
            response = await client.request(method, url.replace("/x", "/x%00", 1))
            assert_invalid_text(response, ["path"], f"{method} {route.path}")

    async def test_a_surrogate_in_a_json_body(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        for route in guarded_routes(app):
            method, url = request_for(route)
            response = await client.request(method, url, content=b'{"x": "\\ud800"}', headers=JSON)
            label = f"{method} {route.path}"
            if isinstance(route, CleanedBodyRoute):
                # Left to the route, which stores it cleaned (here: no credentials, so refused for that).
                assert response.status_code < 500, label
                assert response.json().get("code") != "invalid_text", label
            else:
                assert_invalid_text(response, ["body", "x"], label)


class TestRequestsNoRouteTakes:
    """The router's own answers (404, 405, a slash redirect) come after the same check: a `/` in
    a path parameter must not turn a refusal into one of them."""

    def test_the_fallback_is_the_apps_last_route(self, app: FastAPI) -> None:
        assert isinstance(app.routes[-1], UnacceptableTextFallback)

    @pytest.mark.parametrize(
        ("method", "url", "loc"),
        [
            ("GET", "/v1/orders/A7E17A3E%00/", ["path"]),  # a redirect to the path without its slash
            ("GET", "/v1/orders/%00/cancel", ["path"]),  # the POST route's 405
            ("DELETE", "/v1/auth/sessions/%00/0", ["path"]),  # no route: 404
            ("GET", "/nowhere?q=%FF", ["query", "q"]),
        ],
    )
    async def test_hostile_text_is_refused_as_a_route_would(
        self, client: httpx.AsyncClient, method: str, url: str, loc: list[str | int]
    ) -> None:
        assert_invalid_text(await client.request(method, url), loc, f"{method} {url}")

    async def test_other_requests_get_the_routers_answers(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/nowhere")).status_code == 404
        assert (await client.get("/v1/orders/A7E17A3E/cancel")).status_code == 405
        redirect = await client.get("/v1/orders/A7E17A3E/")
        assert (redirect.status_code, redirect.headers["location"]) == (307, "http://testserver/v1/orders/A7E17A3E")
        assert (await client.request("HEAD", "/api")).status_code == 405  # the legacy contract keeps HTTP's


class TestTheOrdersEarlyParseIsBehindTheGuard:
    """`POST /v1/orders` parses and places its order before FastAPI's handler: the guard comes
    first, so hostile text never reaches the order statement, even where the order model would
    ignore it."""

    @pytest.fixture
    def one_statement_calls(self, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
        calls: list[tuple[Any, ...]] = []
        original = order_endpoints._create

        async def recorded(request: Any, *args: Any) -> Any:
            calls.append(args)
            return await original(request, *args)

        monkeypatch.setattr(order_endpoints, "_create", recorded)
        return calls

    async def test_hostile_text_in_an_ignored_field_or_the_query_never_reaches_it(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, one_statement_calls: list[tuple[Any, ...]]
    ) -> None:
        customer = await make_customer(balance="5")
        body = b'{"email": "a@example.com", "quantity": 1000, "note": "\\u0000"}'  # OrderCreate ignores `note`
        response = await client.post("/v1/orders", content=body, headers={**auth(customer), **JSON})
        assert_invalid_text(response, ["body", "note"], "ignored field")
        response = await client.post(
            "/v1/orders?x=%00", json={"email": "a@example.com", "quantity": 1000}, headers=auth(customer)
        )
        assert_invalid_text(response, ["query", "x"], "query")
        assert one_statement_calls == []
        balance = (await client.get("/v1/balance", headers=auth(customer))).json()["balance"]
        assert balance == "5.00"

    async def test_the_usual_order_still_takes_it(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, one_statement_calls: list[tuple[Any, ...]]
    ) -> None:
        customer = await make_customer(balance="5")
        response = await client.post(
            "/v1/orders", json={"email": "a@example.com", "quantity": 1000}, headers=auth(customer)
        )
        assert response.status_code == 201, response.text
        assert len(one_statement_calls) == 1
