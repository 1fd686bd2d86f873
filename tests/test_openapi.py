"""The OpenAPI 3.1 document is complete enough for generated SDKs, and CORS serves a browser SPA."""

from __future__ import annotations

import re
from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi import FastAPI

from ordersvc.config import Settings
from ordersvc.main import create_app

OPERATIONS = {
    ("post", "/v1/orders"): "orders_create",
    ("get", "/v1/orders"): "orders_list",
    ("get", "/v1/orders/{order_id}"): "orders_get",
    ("post", "/v1/orders/{order_id}/cancel"): "orders_cancel",
    ("post", "/v1/orders/batch"): "orders_batch",
    ("get", "/v1/orders/{order_id}/events"): "orders_events",
    ("get", "/v1/payments"): "payments_list",
    ("get", "/v1/balance"): "balance_get",
    ("get", "/v1/account"): "account_get",
    ("get", "/v1/api-keys"): "api_keys_list",
    ("post", "/v1/api-keys"): "api_keys_create",
    ("delete", "/v1/api-keys/{prefix}"): "api_keys_delete",
    ("post", "/v1/webhook-endpoints"): "webhook_endpoints_create",
    ("get", "/v1/webhook-endpoints"): "webhook_endpoints_list",
    ("get", "/v1/webhook-endpoints/{endpoint_id}"): "webhook_endpoints_get",
    ("patch", "/v1/webhook-endpoints/{endpoint_id}"): "webhook_endpoints_update",
    ("delete", "/v1/webhook-endpoints/{endpoint_id}"): "webhook_endpoints_delete",
    ("post", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): "webhook_endpoints_rotate_secret",
    ("get", "/v1/webhook-endpoints/{endpoint_id}/deliveries"): "webhook_deliveries_list",
    ("get", "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}"): "webhook_deliveries_get",
    ("post", "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/resend"): "webhook_deliveries_resend",
    ("post", "/v1/webhook-endpoints/{endpoint_id}/resend-failed"): "webhook_deliveries_resend_failed",
    ("get", "/v1/events/stream"): "events_stream",
    ("get", "/v1/balance/alert"): "balance_alert_get",
    ("put", "/v1/balance/alert"): "balance_alert_set",
    ("get", "/v1/deposit-addresses"): "deposit_addresses_list",
    ("get", "/v1/deposit-addresses/{network}"): "deposit_addresses_get",
    ("post", "/v1/deposit-addresses/{network}"): "deposit_addresses_assign",
    ("get", "/v1/deposits"): "deposits_list",
    ("get", "/v1/bonus-tiers"): "bonus_tiers_list",
    ("post", "/v1/coupons/redeem"): "coupons_redeem",
    ("post", "/v1/fulfilment/claim"): "fulfilment_claim",
    ("post", "/v1/fulfilment/orders/{order_id}/progress"): "fulfilment_progress",
    ("post", "/v1/fulfilment/orders/{order_id}/heartbeat"): "fulfilment_heartbeat",
    ("post", "/v1/fulfilment/orders/{order_id}/complete"): "fulfilment_complete",
    ("post", "/v1/fulfilment/orders/{order_id}/fail"): "fulfilment_fail",
    ("post", "/v1/auth/signup"): "auth_signup",
    ("post", "/v1/auth/verify-email"): "auth_verify_email",
    ("post", "/v1/auth/resend-verification"): "auth_resend_verification",
    ("post", "/v1/auth/login"): "auth_login",
    ("post", "/v1/auth/password-reset"): "auth_password_reset_request",
    ("post", "/v1/auth/password-reset/confirm"): "auth_password_reset_confirm",
    ("post", "/v1/auth/logout"): "auth_logout",
    ("post", "/v1/auth/logout-everywhere"): "auth_logout_everywhere",
    ("get", "/v1/auth/sessions"): "auth_sessions_list",
    ("delete", "/v1/auth/sessions/{session_id}"): "auth_sessions_delete",
    ("get", "/v1/account/security"): "account_security_get",
    ("post", "/v1/account/password"): "account_password_change",
    ("post", "/v1/account/email"): "account_email_change",
    ("post", "/v1/account/totp"): "account_totp_start",
    ("post", "/v1/account/totp/confirm"): "account_totp_confirm",
    ("post", "/v1/account/totp/disable"): "account_totp_disable",
    ("get", "/v1/orders/export"): "orders_export",
    ("get", "/v1/payments/export"): "payments_export",
    ("get", "/v1/deposits/export"): "deposits_export",
    ("post", "/v1/admin/auth/set-password"): "admin_set_password",
    ("post", "/v1/admin/auth/login"): "admin_login",
    ("get", "/v1/admin/me"): "admin_me",
    ("post", "/v1/admin/auth/logout"): "admin_logout",
    ("post", "/v1/admin/auth/totp/start"): "admin_totp_start",
    ("post", "/v1/admin/auth/totp/confirm"): "admin_totp_confirm",
    ("get", "/v1/admin/overview"): "admin_overview",
    ("get", "/v1/admin/customers"): "admin_customers_list",
    ("get", "/v1/admin/customers/export"): "admin_customers_export",
    ("get", "/v1/admin/customers/{account_id}"): "admin_customers_get",
    ("get", "/v1/admin/customers/{account_id}/payments"): "admin_customers_payments",
    ("get", "/v1/admin/customers/{account_id}/payments/export"): "admin_customers_payments_export",
    ("get", "/v1/admin/customers/{account_id}/deposits"): "admin_customers_deposits",
    ("get", "/v1/admin/customers/{account_id}/consents"): "admin_customers_consents",
    ("post", "/v1/admin/customers/{account_id}/adjustments"): "admin_customers_adjust",
    ("post", "/v1/admin/customers/{account_id}/api-keys/{prefix}/revoke"): "admin_customers_revoke_key",
    ("post", "/v1/admin/customers/{account_id}/sessions/end"): "admin_customers_end_sessions",
    ("post", "/v1/admin/customers/{account_id}/disable"): "admin_customers_disable",
    ("post", "/v1/admin/customers/{account_id}/enable"): "admin_customers_enable",
    ("get", "/v1/admin/orders"): "admin_orders_list",
    ("get", "/v1/admin/orders/export"): "admin_orders_export",
    ("post", "/v1/admin/orders/{order_id}/cancel"): "admin_orders_cancel",
    ("get", "/v1/admin/deposits/unmatched"): "admin_deposits_unmatched",
    ("post", "/v1/admin/deposits/{deposit_id}/assign"): "admin_deposits_assign",
    ("get", "/v1/admin/operators"): "admin_operators_list",
    ("post", "/v1/admin/operators"): "admin_operators_create",
    ("patch", "/v1/admin/operators/{operator_id}"): "admin_operators_update",
    ("get", "/v1/admin/audit"): "admin_audit_list",
    ("get", "/v1/admin/audit/export"): "admin_audit_export",
    ("get", "/v1/admin/coupons"): "admin_coupons_list",
    ("post", "/v1/admin/coupons"): "admin_coupons_create",
    ("post", "/v1/admin/coupons/{code}/disable"): "admin_coupons_disable",
    ("get", "/v1/admin/bonus-tiers"): "admin_bonus_tiers_list",
    ("put", "/v1/admin/bonus-tiers"): "admin_bonus_tiers_set",
    ("delete", "/v1/admin/bonus-tiers/{threshold}"): "admin_bonus_tiers_remove",
    ("get", "/v1/admin/suppressions"): "admin_suppressions_list",
    ("post", "/v1/admin/suppressions"): "admin_suppressions_add",
    ("delete", "/v1/admin/suppressions"): "admin_suppressions_remove",
    ("get", "/v1/admin/recipients"): "admin_recipients_get",
    ("post", "/v1/admin/consents/{consent_id}/resend"): "admin_consents_resend",
    ("get", "/v1/admin/workers"): "admin_workers_list",
    ("post", "/v1/admin/workers"): "admin_workers_create",
    ("post", "/v1/admin/workers/{name}/revoke"): "admin_workers_revoke",
    ("get", "/v1/admin/deposits/events"): "admin_deposit_events_list",
}
# No credentials: the bonus tiers, and signing up and in.
PUBLIC = {
    "bonus_tiers_list",
    "auth_signup",
    "auth_verify_email",
    "auth_resend_verification",
    "auth_login",
    "auth_password_reset_request",
    "auth_password_reset_confirm",
    "admin_login",
    "admin_set_password",
}
CUSTOMER_SECURITY = [{"bearerAuth": []}, {"apiKeyHeader": []}, {"sessionCookie": []}]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    schema: dict[str, Any] = create_app(Settings()).openapi()
    return schema


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method, path): op for path, item in document["paths"].items() for method, op in item.items()}


class TestDocument:
    def test_is_openapi_3_1_with_every_route(self, document: dict[str, Any]) -> None:
        assert document["openapi"].startswith("3.1")
        assert {key: op["operationId"] for key, op in operations(document).items()} == OPERATIONS

    def test_every_operation_is_documented_for_client_developers(self, document: dict[str, Any]) -> None:
        for key, op in operations(document).items():
            assert op.get("summary"), key
            assert len(op.get("description", "")) > 40, key
            assert len(op.get("tags", [])) == 1, key
            expected = [] if op["operationId"] in PUBLIC else CUSTOMER_SECURITY
            if op["operationId"].startswith("fulfilment_"):
                expected = [{"workerAuth": []}]
            if op["operationId"].startswith("admin_") and op["operationId"] not in PUBLIC:
                expected = [{"operatorSession": []}]  # the console: an operator's session, nothing else
            assert op["security"] == expected, key

    def test_every_operation_lists_its_error_codes_per_status(self, document: dict[str, Any]) -> None:
        """Each error status of an operation names the codes it can carry (`x-error-codes`, the
        description, an example each): what a route raises itself, and what its kind always
        can (a malformed head, an outage; with credentials, a bad one and, for a customer's,
        the rate limit and the CSRF check of a change; with input, its validation)."""
        head, outage = {"400": ["invalid_text"]}, {"503": ["service_unavailable", "timeout"]}
        customer = {"401": ["unauthorized"], "429": ["rate_limited"]}
        change = {**customer, "403": ["csrf_failed"]}
        json_body = {"413": ["body_too_large"], "415": ["unsupported_media_type"]}
        expected = {
            "orders_create": {
                **head, **outage, **change, **json_body,
                "402": ["insufficient_balance"],
                "409": ["idempotency_conflict", "recipient_opted_out"],
                "422": [
                    "validation_error", "invalid_text", "invalid_email", "invalid_quantity", "invalid_idempotency_key",
                ],
            },
            # No input at all: no 422, and a read takes no CSRF token.
            "balance_get": {**head, **outage, **customer},
            "account_get": {**head, **outage, **customer},
            "auth_logout": {**head, **outage, **change},
            "orders_list": {
                **head, **outage, **customer, "422": ["validation_error", "invalid_params", "invalid_cursor"],
            },
            "orders_cancel": {
                **head, **outage, **change,
                "404": ["not_found"], "409": ["idempotency_conflict", "order_not_cancelable"],
                "422": ["invalid_idempotency_key", "validation_error"],
            },
            # Every line's own refusal is in the 200 answer; only the whole request's are statuses.
            "orders_batch": {
                **head, **outage, **change, **json_body,
                "409": ["idempotency_conflict"],
                "422": ["validation_error", "invalid_text", "invalid_batch", "invalid_idempotency_key"],
            },
            "coupons_redeem": {
                **head, **outage, **change, **json_body,
                "404": ["coupon_not_found"],
                "409": [
                    "coupon_already_redeemed", "coupon_disabled", "coupon_exhausted", "coupon_expired",
                    "idempotency_conflict",
                ],
                "422": ["validation_error", "invalid_text", "invalid_idempotency_key"],
            },
            # A worker's token: no customer rate limit, no browser session.
            "fulfilment_complete": {
                **head, **outage, "401": ["unauthorized"], "404": ["not_found"], "409": ["lease_not_held"],
                "422": ["validation_error"],
            },
            # Public: no credentials to refuse.
            "auth_login": {
                **head, **outage, **json_body,
                "401": ["invalid_credentials", "invalid_totp_code", "totp_required"],
                "403": ["account_disabled", "email_not_verified"],
                "422": ["validation_error", "invalid_text"],
                "429": ["too_many_attempts"],
            },
            "bonus_tiers_list": {**head, **outage},
        }  # fmt: skip
        error_codes = set(document["components"]["schemas"]["ErrorCode"]["enum"])
        for (method, _), op in operations(document).items():
            errors = {status: r for status, r in op["responses"].items() if status[0] in "45"}
            listed = {status: sorted(r["x-error-codes"]) for status, r in errors.items()}
            if op["operationId"] in expected:
                want = {status: sorted(codes) for status, codes in expected[op["operationId"]].items()}
                assert listed == want, op["operationId"]
            has_input = bool(op.get("parameters") or op.get("requestBody"))
            assert ("422" in errors) == has_input, op["operationId"]
            assert ("403" in errors) >= (method == "post" and op["security"] == CUSTOMER_SECURITY), op["operationId"]
            for status, response in errors.items():
                assert set(response["x-error-codes"]) <= error_codes, (op["operationId"], status)
                content = response["content"]
                assert list(content) == ["application/problem+json"]
                problem = content["application/problem+json"]
                assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}
                assert list(problem["examples"]) == response["x-error-codes"]
                for code, example in problem["examples"].items():
                    assert (example["value"]["code"], example["value"]["status"]) == (code, int(status))
                    assert f"`{code}`" in response["description"]

    def test_response_headers_are_documented(self, document: dict[str, Any]) -> None:
        """X-Request-ID on every answer; the rate limit's fields where a customer's request is
        counted; Retry-After on 429 and 503; WWW-Authenticate on 401."""
        assert set(document["components"]["headers"]) == {
            "X-Request-ID", "RateLimit", "RateLimit-Policy", "Retry-After", "WWW-Authenticate",
        }  # fmt: skip
        ops = operations(document)

        def headers(key: tuple[str, str], status: str) -> set[str]:
            return set(ops[key]["responses"][status]["headers"])

        create = ("post", "/v1/orders")
        assert headers(create, "201") == {"X-Request-ID", "RateLimit", "RateLimit-Policy", "Idempotent-Replayed"}
        assert headers(create, "429") == {"X-Request-ID", "RateLimit", "RateLimit-Policy", "Retry-After"}
        assert headers(create, "503") == {"X-Request-ID", "Retry-After"}
        assert headers(create, "401") == {"X-Request-ID", "WWW-Authenticate"}
        assert headers(("get", "/v1/bonus-tiers"), "200") == {"X-Request-ID"}  # public: no rate limit
        claim = ("post", "/v1/fulfilment/claim")
        assert headers(claim, "200") == {"X-Request-ID"}  # workers are not rate limited
        for op in ops.values():
            for response in op["responses"].values():
                assert "X-Request-ID" in response["headers"]

    def test_every_answer_has_an_example_that_validates(self, document: dict[str, Any]) -> None:
        """Every 2xx JSON answer and every component example validates against its schema
        (Draft 2020-12, with the document's components); that examples match real answers
        field for field is checked live by tests/test_schemathesis.py."""

        def check(instance: object, ref: str, label: str) -> None:
            validator = jsonschema_rs.Draft202012Validator({"$ref": ref, "components": document["components"]})
            assert [e.message for e in validator.iter_errors(instance)] == [], label

        for name, component in document["components"]["schemas"].items():
            for example in component.get("examples", []):
                check(example, f"#/components/schemas/{name}", name)
        for (method, path), op in operations(document).items():
            for status, response in op["responses"].items():
                media = response.get("content", {}).get("application/json")
                if status.startswith("2") and media is not None:
                    assert "example" in media, (method, path, status)
                    check(media["example"], media["schema"]["$ref"], f"{method} {path} {status}")

    def test_money_is_a_decimal_string_and_says_so(self, document: dict[str, Any]) -> None:
        schemas = document["components"]["schemas"]
        for name, field in [("BalanceOut", "balance"), ("OrderOut", "price"), ("PaymentOut", "amount")]:
            prop = schemas[name]["properties"][field]
            assert prop["type"] == "string"
            assert "float" in prop["description"]
            assert prop["pattern"] == r"^-?[0-9]+\.[0-9]{2,3}$"

    def test_request_and_response_examples(self, document: dict[str, Any]) -> None:
        schemas = document["components"]["schemas"]
        for name in ("OrderCreate", "OrderOut", "PaymentOut", "BalanceOut", "AccountOut", "Problem", "ApiKeyCreated"):
            assert schemas[name].get("examples"), name

    def test_quantity_range_and_idempotency_header_are_documented(self, document: dict[str, Any]) -> None:
        quantity = document["components"]["schemas"]["OrderCreate"]["properties"]["quantity"]
        assert (quantity["minimum"], quantity["maximum"]) == (500, 50000)
        # Every POST that creates or moves something takes a key, and says when it replays (but
        # the deposit address, idempotent by itself: a stored answer could name a recycled one).
        assignment = operations(document)[("post", "/v1/deposit-addresses/{network}")]
        assert [p for p in assignment["parameters"] if p["in"] == "header"] == []
        for key, status in [
            (("post", "/v1/orders"), "201"),
            (("post", "/v1/coupons/redeem"), "201"),
            (("post", "/v1/api-keys"), "201"),
            (("post", "/v1/orders/{order_id}/cancel"), "200"),
        ]:
            op = operations(document)[key]
            (header,) = [p for p in op["parameters"] if p["in"] == "header"]
            assert (header["name"], header["required"], header["schema"]["type"]) == (
                "Idempotency-Key",
                False,
                "string",
            )
            assert "Idempotent-Replayed" in op["responses"][status]["headers"], key

    async def test_served_with_interactive_docs(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/openapi.json")).json()["openapi"].startswith("3.1")
        docs = await client.get("/docs")
        assert "swagger-ui" in docs.text
        assert "://" not in docs.text  # no CDN
        assert "script-src 'self';" in docs.headers["content-security-policy"]
        for name in re.findall(r'(?:src|href)="(docs/[^"]+)"', docs.text):
            served = await client.get(f"/{name}")
            assert served.status_code == 200, name
        assert len(re.findall(r'(?:src|href)="docs/', docs.text)) == 3
        assert (await client.get("/docs/swagger-ui-bundle.js.map")).status_code == 404  # only the page's files
        assert (await client.get("/redoc")).status_code == 404


class TestCors:
    async def preflight(self, app: FastAPI, origin: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.options(
                "/v1/orders",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
                },
            )

    async def test_no_origin_is_allowed_by_default(self) -> None:
        response = await self.preflight(create_app(Settings()), "https://app.example.com")
        assert "access-control-allow-origin" not in response.headers

    async def test_configured_origin_may_send_idempotency_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ORDERSVC_CORS_ORIGINS", "https://app.example.com, https://admin.example.com")
        app = create_app(Settings())
        allowed = await self.preflight(app, "https://app.example.com")
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "idempotency-key" in allowed.headers["access-control-allow-headers"].lower()
        simple = await httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t").get(
            "/healthz", headers={"Origin": "https://app.example.com"}
        )
        exposed = simple.headers["access-control-expose-headers"].lower()
        assert {"x-request-id", "ratelimit", "ratelimit-policy", "retry-after"} <= set(
            exposed.replace(" ", "").split(",")
        )
        refused = await self.preflight(app, "https://evil.example.com")
        assert "access-control-allow-origin" not in refused.headers


async def test_server_errors_keep_cors_headers(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    """The 500 handler runs outside CORSMiddleware; a browser app must still read the problem."""
    from ordersvc.orders import service as orders

    monkeypatch.setenv("ORDERSVC_CORS_ORIGINS", "https://app.example.com")

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(orders, "get_order", broken)
    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            from tests.support import unique_email

            async with app.state.sessionmaker.begin() as session:
                from ordersvc.accounts import service as accounts

                _, key = await accounts.create_account(session, email=unique_email("cors"))
            response = await c.get(
                "/v1/orders/ABCDEF12", headers={"Origin": "https://app.example.com", "X-API-Key": key}
            )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"


class TestMethodNotAllowed:
    @pytest.mark.parametrize(
        ("method", "path", "allow"),
        [
            ("OPTIONS", "/v1/api-keys", "GET, POST"),  # two routes on one path: both are named
            ("PUT", "/v1/orders", "GET, POST"),
            ("PATCH", "/v1/deposit-addresses/BTC", "GET, POST"),
            ("DELETE", "/v1/balance", "GET"),
        ],
    )
    async def test_a_405_lists_every_method_of_the_path(
        self, client: httpx.AsyncClient, method: str, path: str, allow: str
    ) -> None:
        """RFC 9110: a 405 carries `Allow` with the methods the resource supports; Starlette's
        names the first route of the path only (`OPTIONS /v1/api-keys` said `GET`)."""
        response = await client.request(method, path)
        assert (response.status_code, response.json()["code"]) == (405, "method_not_allowed")
        assert response.headers["allow"] == allow
