"""The legacy API and hostile text: a NUL, an unpaired surrogate or invalid UTF-8 in any
parameter gets that parameter's own contract error, in the contract's order, and changes
nothing; and a method other than POST gets the contract's `Invalid params.`, not HTTP's 405."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import MakeCustomer
from tests.legacy.helpers import call, snapshot

INVALID_PARAMS = b'{"error":"Invalid params."}'
INVALID_KEY = b'{"error":"Invalid key."}'
UNKNOWN_ACTION = b'{"error":"Unknown action."}'
INVALID_EMAIL = b'{"error":"Invalid email."}'
INCORRECT_ID = b'{"error":"Incorrect order ID."}'
BAD_REQUEST_ID = b'{"error":"An idempotency key is 1 to 255 printable ASCII characters."}'
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class TestHostileValues:
    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            (b'{"action": "bal\\u0000ance"}', UNKNOWN_ACTION),
            (b'{"action": "\\udfff"}', UNKNOWN_ACTION),
            (b'{"action": "order", "email": "a\\u0000@example.com", "quantity": 1000}', INVALID_EMAIL),
            (b'{"action": "order", "email": "a\\ud800@example.com", "quantity": 1000}', INVALID_EMAIL),
            (b'{"action": "order", "email": "a\xed\xa0\x80@example.com", "quantity": 1000}', INVALID_PARAMS),
            (b'{"action": "order", "email": "a@example.com", "quantity": "1000\\u0000"}', INVALID_PARAMS),
            (
                b'{"action": "order", "email": "a@example.com", "quantity": 1000, "request_id": "r\\u0000"}',
                BAD_REQUEST_ID,
            ),
            (
                b'{"action": "order", "email": "a@example.com", "quantity": 1000, "request_id": "\\ud800"}',
                BAD_REQUEST_ID,
            ),
            (b'{"action": "orders", "page": "1\\u0000"}', INVALID_PARAMS),
            (b'{"action": "payments", "per_page": "\\ud800"}', INVALID_PARAMS),
            (b'{"action": "status", "order": "A7E17A3\\u0000"}', INCORRECT_ID),
            (b'{"action": "cancel", "order": "\\ud800"}', INCORRECT_ID),
            (b'{"action": "status", "orders": "A7E17A3E,\\u0000"}', b'{"\\ufffd": {"error": "Incorrect order ID."}}'),
            # Forms: %00, and invalid UTF-8 (a surrogate, a stray byte), for the whole value.
            (b"action=order&email=a%00@example.com&quantity=1000", INVALID_EMAIL),
            (b"action=order&email=a%ED%A0%80@example.com&quantity=1000", INVALID_EMAIL),
            (b"action=order&email=a%FF@example.com&quantity=1000", INVALID_EMAIL),
            (b"action=order&email=a@example.com&quantity=1000&request_id=%00", BAD_REQUEST_ID),
            (b"action=bal%00ance", UNKNOWN_ACTION),
        ],
    )
    async def test_each_parameter_keeps_its_contract_error(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, body: bytes, expected: bytes
    ) -> None:
        customer = await make_customer(balance="100")
        before = await snapshot(sessionmaker, customer)
        headers = FORM if body.startswith(b"action=") else {}
        response = await call(client, customer.api_key, body, headers=headers)
        assert (response.status_code, response.content) == (200, expected)
        assert await snapshot(sessionmaker, customer) == before

    @pytest.mark.parametrize(
        ("url", "body", "headers"),
        [
            ("/api?key=osk_%00", b'{"action": "balance"}', {}),
            ("/api?key=osk_%ED%A0%80", b'{"action": "balance"}', {}),
            ("/api", b'{"action": "balance", "key": "osk_\\u0000"}', {}),
            ("/api", b'{"action": "balance", "key": "\\ud800"}', {}),
            ("/api", b'{"action": "balance"}', {"Authorization": b"Bearer osk_\x00"}),
            ("/api", b'{"action": "balance"}', {"X-API-Key": b"osk_\x00"}),
            # The key is checked first: a hostile email behind a bad key is still "Invalid key."
            ("/api", b'{"action": "order", "key": "osk_\\u0000", "email": "\\u0000", "quantity": 1000}', {}),
        ],
    )
    async def test_a_hostile_key_is_an_invalid_key(
        self, client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, bytes]
    ) -> None:
        response = await client.post(url, content=body, headers={"Content-Type": "application/json", **headers})
        assert (response.status_code, response.content) == (200, INVALID_KEY)

    async def test_a_hostile_value_in_a_field_nobody_reads_changes_nothing_else(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="100")
        body = b'{"action": "balance", "\\u0000": "\\ud800", "note": ["\\u0000", {"x": "\\udc00"}]}'
        response = await call(client, customer.api_key, body)
        assert (response.status_code, response.content) == (200, b'{"balance": 100.00}')


class TestWrongMethods:
    @pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
    @pytest.mark.parametrize("path", ["/api", "/api/", "/api?key=osk_anything"])
    async def test_answered_in_the_contracts_shape(self, client: httpx.AsyncClient, method: str, path: str) -> None:
        response = await client.request(method, path, content=b'{"action": "balance"}')
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.content == INVALID_PARAMS
        assert response.headers["allow"] == "POST"

    @pytest.mark.parametrize("method", ["HEAD", "OPTIONS"])
    async def test_head_and_options_stay_http(self, client: httpx.AsyncClient, method: str) -> None:
        response = await client.request(method, "/api")
        assert response.status_code == 405
        assert "POST" in response.headers["allow"]

    async def test_post_is_unchanged(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="12.5")
        response = await call(client, customer.api_key, {"action": "balance"})
        assert (response.status_code, response.content) == (200, b'{"balance": 12.50}')
        assert "allow" not in response.headers
