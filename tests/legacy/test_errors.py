"""Every error string of the contract, its precedence, and that a refusal changes nothing."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import MakeCustomer
from tests.legacy.helpers import call, snapshot

INVALID_PARAMS = b'{"error":"Invalid params."}'
INVALID_KEY = b'{"error":"Invalid key."}'
UNKNOWN_ACTION = b'{"error":"Unknown action."}'
INVALID_EMAIL = b'{"error":"Invalid email."}'
INVALID_QUANTITY = b'{"error":"Invalid quantity. Range is 500-50000."}'
INSUFFICIENT = b'{"error":"Insufficient balance."}'


class TestErrorStrings:
    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            # Unparseable, not an object: Invalid params, even before the key is looked at.
            (b"", INVALID_PARAMS),
            (b"not json", INVALID_PARAMS),
            (b'{"action": "balance"', INVALID_PARAMS),
            (b"[]", INVALID_PARAMS),
            (b'"balance"', INVALID_PARAMS),
            (b"null", INVALID_PARAMS),
            (b"42", INVALID_PARAMS),
            (b'{"action": NaN}', INVALID_PARAMS),
            (b"\xff\xfe{}", INVALID_PARAMS),
            (b'{"action": "balance\\u0000"}', UNKNOWN_ACTION),
            (b'{"action": "\\ud800"}', UNKNOWN_ACTION),
            (b"[" * 100_000 + b"]" * 100_000, INVALID_PARAMS),
            # Missing or non-string action.
            (b"{}", INVALID_PARAMS),
            (b'{"action": null}', INVALID_PARAMS),
            (b'{"action": 1}', INVALID_PARAMS),
            (b'{"action": ["balance"]}', INVALID_PARAMS),
            (b'{"action": true}', INVALID_PARAMS),
            # Unknown action (case matters).
            (b'{"action": "Balance"}', UNKNOWN_ACTION),
            (b'{"action": ""}', UNKNOWN_ACTION),
            (b'{"action": "refund"}', UNKNOWN_ACTION),
        ],
    )
    async def test_error_for_body(self, client: httpx.AsyncClient, make_customer: MakeCustomer, body, expected) -> None:
        customer = await make_customer()
        response = await call(client, customer.api_key, body)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.content == expected

    @pytest.mark.parametrize(
        ("order", "expected"),
        [
            ({}, INVALID_PARAMS),
            ({"email": "a@example.com"}, INVALID_PARAMS),
            ({"quantity": 1000}, INVALID_PARAMS),
            ({"email": None, "quantity": 1000}, INVALID_PARAMS),
            ({"email": 5, "quantity": 1000}, INVALID_PARAMS),
            ({"email": ["a@example.com"], "quantity": 1000}, INVALID_PARAMS),
            ({"email": "a@example.com", "quantity": None}, INVALID_PARAMS),
            ({"email": "a@example.com", "quantity": True}, INVALID_PARAMS),
            ({"email": "a@example.com", "quantity": 1000.5}, INVALID_PARAMS),
            ({"email": "a@example.com", "quantity": "1000.5"}, INVALID_PARAMS),
            ({"email": "a@example.com", "quantity": "ten"}, INVALID_PARAMS),
            ({"email": "a@example.com", "quantity": ""}, INVALID_PARAMS),
            ({"email": "a@example.com", "quantity": {"n": 1000}}, INVALID_PARAMS),
            # Wrong types win over a malformed email.
            ({"email": "nope", "quantity": 1000.5}, INVALID_PARAMS),
            # Malformed email wins over a bad quantity and an empty balance.
            ({"email": "nope", "quantity": 1000}, INVALID_EMAIL),
            ({"email": "", "quantity": 1000}, INVALID_EMAIL),
            ({"email": "a@", "quantity": 1000}, INVALID_EMAIL),
            ({"email": "a b@example.com", "quantity": 1000}, INVALID_EMAIL),
            ({"email": "x" * 300 + "@example.com", "quantity": 1000}, INVALID_EMAIL),
            ({"email": "nope", "quantity": 5}, INVALID_EMAIL),
            ({"email": "a\x00@example.com", "quantity": 1000}, INVALID_EMAIL),
            ({"email": "\ud800@example.com", "quantity": 1000}, INVALID_EMAIL),
            # Quantity range wins over an empty balance.
            ({"email": "a@example.com", "quantity": 499}, INVALID_QUANTITY),
            ({"email": "a@example.com", "quantity": 50001}, INVALID_QUANTITY),
            ({"email": "a@example.com", "quantity": 0}, INVALID_QUANTITY),
            ({"email": "a@example.com", "quantity": -1000}, INVALID_QUANTITY),
            ({"email": "a@example.com", "quantity": "-1000"}, INVALID_QUANTITY),
            ({"email": "a@example.com", "quantity": 10**30}, INVALID_QUANTITY),
            ({"email": "a@example.com", "quantity": "9" * 30}, INVALID_QUANTITY),
            ({"email": "a@example.com", "quantity": "-" + "9" * 30}, INVALID_QUANTITY),
            # Longer than Python converts (4300 digits): refused like the same JSON number would be.
            ({"email": "a@example.com", "quantity": "9" * 5000}, INVALID_PARAMS),
            # Valid order, no money.
            ({"email": "a@example.com", "quantity": 500}, INSUFFICIENT),
            ({"email": "a@example.com", "quantity": "10000"}, INSUFFICIENT),
            ({"email": "a@example.com", "quantity": 10000.0}, INSUFFICIENT),
        ],
    )
    async def test_order_error_precedence(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, order, expected
    ) -> None:
        customer = await make_customer()
        response = await call(client, customer.api_key, {"action": "order", **order})
        assert (response.status_code, response.content) == (200, expected)
        assert await snapshot(sessionmaker, customer) == ("0.00", 0, 0)

    @pytest.mark.parametrize(
        "params",
        [
            {"page": 0},
            {"page": -1},
            {"page": "0"},
            {"page": True},
            {"page": 1.5},
            {"page": "one"},
            {"page": [1]},
            {"per_page": 0},
            {"per_page": 101},
            {"per_page": "101"},
            {"per_page": False},
            {"per_page": 10.5},
            {"per_page": ""},
        ],
    )
    @pytest.mark.parametrize("action", ["orders", "payments"])
    async def test_bad_page_or_per_page(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, action: str, params: dict[str, object]
    ) -> None:
        customer = await make_customer(balance="5")
        response = await call(client, customer.api_key, {"action": action, **params})
        assert response.content == INVALID_PARAMS


class TestFractionsBeyondFloatPrecision:
    """JSON numbers are read exactly: a fraction too small for a float is still a fraction."""

    @pytest.mark.parametrize(
        "body",
        [
            b'{"action": "order", "email": "a@example.com", "quantity": 49999.999999999999999}',
            b'{"action": "order", "email": "a@example.com", "quantity": 500.0000000000000001}',
            b'{"action": "orders", "page": 1.0000000000000001}',
            b'{"action": "payments", "per_page": 9.9999999999999999999}',
            b'{"action": "order", "email": "a@example.com", "quantity": 1e-400}',
            b'{"action": "orders", "page": 1e999999999}',
        ],
    )
    async def test_is_invalid_params(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, body: bytes
    ) -> None:
        customer = await make_customer(balance="100")
        assert (await call(client, customer.api_key, body)).content == INVALID_PARAMS
        assert await snapshot(sessionmaker, customer) == ("100.00", 1, 0)

    async def test_exponent_without_fraction_is_an_integer(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="100")
        body = b'{"action": "order", "email": "a@example.com", "quantity": 1.234e3}'
        assert (await call(client, customer.api_key, body)).content.startswith(b'{"order":"')


class TestPrecedence:
    async def test_unparseable_body_beats_missing_key(self, client: httpx.AsyncClient) -> None:
        assert (await call(client, None, b"{oops")).content == INVALID_PARAMS

    async def test_missing_key_beats_missing_action(self, client: httpx.AsyncClient) -> None:
        assert (await call(client, None, {})).content == INVALID_KEY

    async def test_unknown_key_beats_unknown_action(self, client: httpx.AsyncClient) -> None:
        assert (await call(client, "osk_notarealkey000000000", {"action": "nope"})).content == INVALID_KEY

    async def test_missing_key_beats_bad_order(self, client: httpx.AsyncClient) -> None:
        assert (await call(client, None, {"action": "order", "email": "x"})).content == INVALID_KEY

    @pytest.mark.parametrize("key", ["", "wrong", "osk_", "osk_" + "A" * 43, "osk_" + "A" * 500, "osk_bad\x00", "ключ"])
    async def test_unknown_key_in_body(self, client: httpx.AsyncClient, key: str) -> None:
        assert (await call(client, None, {"action": "balance", "key": key})).content == INVALID_KEY

    @pytest.mark.parametrize("key", [123, None, True, ["osk_x"], {"k": 1}])
    async def test_non_string_key_in_body(self, client: httpx.AsyncClient, key: object) -> None:
        assert (await call(client, None, {"action": "balance", "key": key})).content == INVALID_KEY


class TestBodyLimits:
    async def test_body_over_64_kib_is_refused(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="5")
        body = b'{"action": "balance", "pad": "' + b"x" * (64 * 1024) + b'"}'
        assert (await call(client, customer.api_key, body)).content == INVALID_PARAMS

    async def test_body_of_exactly_64_kib_is_accepted(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="5")
        head, tail = b'{"action": "balance", "pad": "', b'"}'
        body = head + b"x" * (64 * 1024 - len(head) - len(tail)) + tail
        assert len(body) == 64 * 1024
        assert (await call(client, customer.api_key, body)).content == b'{"balance": 5.00}'

    async def test_oversized_streamed_body_without_length_is_refused(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="5")

        async def chunks():
            yield b'{"action": "balance", "pad": "'
            for _ in range(100):
                yield b"x" * 1024
            yield b'"}'

        response = await client.post(f"/api?key={customer.api_key}", content=chunks())
        assert response.content == INVALID_PARAMS


class TestRefusalsChangeNothing:
    async def test_insufficient_balance_leaves_balance_and_history(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="9.999")
        before = await snapshot(sessionmaker, customer)
        response = await call(
            client, customer.api_key, {"action": "order", "email": "a@example.com", "quantity": 10000}
        )
        assert response.content == INSUFFICIENT
        assert await snapshot(sessionmaker, customer) == before == ("9.999", 1, 0)

    async def test_get_is_not_an_action_call(self, client: httpx.AsyncClient) -> None:
        # Answered in the contract's shape (old clients read every answer as JSON): see test_hostile_text.
        response = await client.get("/api?key=osk_anything", params={"action": "balance"})
        assert (response.status_code, response.content) == (200, INVALID_PARAMS)
