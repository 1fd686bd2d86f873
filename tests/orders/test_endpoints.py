"""REST /v1/orders: create (idempotent), get, list with cursors and filters."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import MakeCustomer
from tests.legacy.helpers import snapshot
from tests.support import Customer


def auth(customer: Customer) -> dict[str, str]:
    return {"Authorization": f"Bearer {customer.api_key}"}


async def create(client: httpx.AsyncClient, customer: Customer, quantity: int = 1000, **headers: str) -> httpx.Response:
    return await client.post(
        "/v1/orders", json={"email": "to@example.com", "quantity": quantity}, headers={**auth(customer), **headers}
    )


class TestCreate:
    async def test_created_order_and_debit(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="20")
        response = await create(client, customer, quantity=1234)
        assert response.status_code == 201
        body = response.json()
        assert re.fullmatch(r"[0-9A-F]{8}", body["id"])
        assert body | {"id": "X", "created": "X"} == {
            "id": "X",
            "email": "to@example.com",
            "quantity": 1234,
            "price": "1.234",
            "status": "awaiting_confirmation",
            "progress": 0,
            "created": "X",
            "cancelable": True,
        }
        created = datetime.fromisoformat(body["created"])
        assert created.utcoffset() == timedelta(0)
        assert abs(datetime.now(UTC) - created) < timedelta(minutes=2)
        assert await snapshot(sessionmaker, customer) == ("18.766", 2, 1)

    async def test_x_api_key_header_works_too(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="2")
        response = await client.post(
            "/v1/orders", json={"email": "a@example.com", "quantity": 500}, headers={"X-API-Key": customer.api_key}
        )
        assert response.status_code == 201

    @pytest.mark.parametrize(
        ("body", "status", "code", "field"),
        [
            ({"email": "nope", "quantity": 1000}, 422, "invalid_email", "email"),
            ({"email": "a@example.com", "quantity": 499}, 422, "invalid_quantity", "quantity"),
            ({"email": "a@example.com", "quantity": 50001}, 422, "invalid_quantity", "quantity"),
            ({"email": "a@example.com", "quantity": "1000"}, 422, "validation_error", "quantity"),
            ({"email": "a@example.com", "quantity": 1000.5}, 422, "validation_error", "quantity"),
            ({"email": "a@example.com", "quantity": True}, 422, "validation_error", "quantity"),
            ({"email": "a@example.com"}, 422, "validation_error", "quantity"),
            ({"quantity": 1000}, 422, "validation_error", "email"),
            ({"email": "a@example.com", "quantity": 5000}, 402, "insufficient_balance", None),
        ],
    )
    async def test_refusals_are_problems_and_change_nothing(
        self,
        client: httpx.AsyncClient,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        body: dict[str, object],
        status: int,
        code: str,
        field: str | None,
    ) -> None:
        customer = await make_customer(balance="4.999")
        response = await client.post("/v1/orders", json=body, headers=auth(customer))
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert (problem["status"], problem["code"], problem["type"]) == (status, code, f"/problems/{code}")
        assert problem["title"]
        assert problem["detail"]
        if field is not None:
            assert ["body", field] in [e["loc"] for e in problem["errors"]]
        assert await snapshot(sessionmaker, customer) == ("4.999", 1, 0)

    @pytest.mark.parametrize(
        "body", [b"", b"not json", b"[]", b'{"email": "a@example.com", "quantity": 1e999}', b"\xff\xfe\xfd"]
    )
    async def test_malformed_body_is_422(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, body: bytes
    ) -> None:
        customer = await make_customer(balance="5")
        response = await client.post(
            "/v1/orders", content=body, headers={**auth(customer), "Content-Type": "application/json"}
        )
        assert (response.status_code, response.json()["code"]) == (422, "validation_error")


class TestBodies:
    async def test_an_unknown_field_is_422_naming_it_and_places_nothing(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="5")
        typo = await client.post(
            "/v1/orders", json={"email": "to@example.com", "quantiy": 1000, "quantity": 1000}, headers=auth(customer)
        )
        assert (typo.status_code, typo.json()["code"]) == (422, "validation_error")
        assert {"loc": ["body", "quantiy"], "type": "extra_forbidden"}.items() <= typo.json()["errors"][0].items()
        redeem = await client.post("/v1/coupons/redeem", json={"cod": "X"}, headers=auth(customer))
        assert redeem.status_code == 422
        assert ["body", "cod"] in [e["loc"] for e in redeem.json()["errors"]]
        assert await snapshot(sessionmaker, customer) == ("5.00", 1, 0)

    @pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
    async def test_a_body_that_is_not_json_is_415(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, content_type: str
    ) -> None:
        customer = await make_customer(balance="5")
        for path in ("/v1/orders", "/v1/coupons/redeem"):
            response = await client.post(
                path,
                content=b'{"email": "to@example.com", "quantity": 1000}',
                headers={**auth(customer), "Content-Type": content_type},
            )
            assert (response.status_code, response.json()["code"]) == (415, "unsupported_media_type"), path
            assert response.headers["content-type"] == "application/problem+json"

    async def test_no_body_at_all_is_a_missing_body_not_a_media_type(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="5")
        for path in ("/v1/orders", "/v1/coupons/redeem"):
            response = await client.post(path, headers=auth(customer))
            assert (response.status_code, response.json()["code"]) == (422, "validation_error"), path
            assert response.json()["errors"][0]["loc"] == ["body"], path

    async def test_every_operation_with_a_json_body_documents_its_415(self, client: httpx.AsyncClient) -> None:
        document = (await client.get("/openapi.json")).json()
        operations = [o for p in document["paths"].values() for o in p.values()]
        with_body = [o for o in operations if "application/json" in o.get("requestBody", {}).get("content", {})]
        assert with_body
        assert all("415" in o["responses"] for o in with_body)
        assert all(o["responses"]["415"]["content"]["application/problem+json"] for o in with_body)


class TestAuthentication:
    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"Authorization": "Bearer osk_wrongwrongwrongwrong"},
            {"Authorization": "Basic dXNlcjpwYXNz"},
            {"X-API-Key": "nope"},
        ],
    )
    @pytest.mark.parametrize(
        ("method", "path"),
        [("GET", "/v1/orders"), ("POST", "/v1/orders"), ("GET", "/v1/account"), ("GET", "/v1/payments")],
    )
    async def test_missing_or_bad_key_is_401_with_challenge(
        self, client: httpx.AsyncClient, headers: dict[str, str], method: str, path: str
    ) -> None:
        response = await client.request(method, path, headers=headers, json={"email": "a@example.com", "quantity": 500})
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["code"] == "unauthorized"

    @pytest.mark.parametrize("body", [b'{"email":1', b"\xff\xfe"])
    @pytest.mark.parametrize("headers", [{}, {"X-API-Key": "osk_wrongwrongwrong"}])
    async def test_no_valid_key_is_401_even_with_a_malformed_body(
        self, client: httpx.AsyncClient, headers: dict[str, str], body: bytes
    ) -> None:
        response = await client.post(
            "/v1/orders", content=body, headers={**headers, "Content-Type": "application/json"}
        )
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")

    async def test_revoked_key_is_401(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer()
        deleted = await client.delete(f"/v1/api-keys/{customer.api_key[:12]}", headers=auth(customer))
        assert deleted.status_code == 204
        assert (await client.get("/v1/account", headers=auth(customer))).status_code == 401


class TestIdempotency:
    async def test_same_key_same_body_replays_without_a_second_debit(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="10")
        first = await create(client, customer, **{"Idempotency-Key": "k-1"})
        again = await create(client, customer, **{"Idempotency-Key": "k-1"})
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        assert await snapshot(sessionmaker, customer) == ("9.00", 2, 1)

    async def test_same_key_other_body_is_409(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="10")
        await create(client, customer, quantity=1000, **{"Idempotency-Key": "k-2"})
        conflict = await create(client, customer, quantity=2000, **{"Idempotency-Key": "k-2"})
        assert (conflict.status_code, conflict.json()["code"]) == (409, "idempotency_conflict")
        assert await snapshot(sessionmaker, customer) == ("9.00", 2, 1)

    async def test_keys_are_scoped_to_the_account(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        alice, bob = await make_customer(balance="5"), await make_customer(balance="5")
        a = await create(client, alice, **{"Idempotency-Key": "shared"})
        b = await create(client, bob, **{"Idempotency-Key": "shared"})
        assert (a.status_code, b.status_code) == (201, 201)
        assert a.json()["id"] != b.json()["id"]

    async def test_a_failed_attempt_leaves_the_key_unused(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        from ordersvc.ledger import service as ledger

        customer = await make_customer(balance="0.5")
        refused = await create(client, customer, quantity=1000, **{"Idempotency-Key": "retry-me"})
        assert refused.status_code == 402
        async with sessionmaker.begin() as session:
            await ledger.credit(session, email=customer.email, amount_mills=1000)
        accepted = await create(client, customer, quantity=1000, **{"Idempotency-Key": "retry-me"})
        assert accepted.status_code == 201

    @pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "ünï"])
    async def test_malformed_key_is_422(self, client: httpx.AsyncClient, make_customer: MakeCustomer, key: str) -> None:
        customer = await make_customer(balance="5")
        response = await client.post(
            "/v1/orders",
            json={"email": "a@example.com", "quantity": 500},
            headers={**auth(customer), "Idempotency-Key": key.encode("utf-8")},
        )
        assert response.status_code == 422

    async def test_legacy_request_id_shares_the_guarantee(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="10")
        body = {"action": "order", "email": "to@example.com", "quantity": 1000, "request_id": "legacy-1"}
        first = await client.post(f"/api?key={customer.api_key}", json=body)
        again = await client.post(f"/api?key={customer.api_key}", json=body)
        assert first.content == again.content
        other = await client.post(f"/api?key={customer.api_key}", json={**body, "quantity": 2000})
        assert other.json() == {"error": "This idempotency key was already used with different parameters."}
        bad = await client.post(f"/api?key={customer.api_key}", json={**body, "request_id": 5})
        assert bad.content == b'{"error":"Invalid params."}'
        # The same key through REST with the same parameters is the same order.
        rest = await create(client, customer, **{"Idempotency-Key": "legacy-1"})
        assert rest.json()["id"] == first.json()["order"]
        assert await snapshot(sessionmaker, customer) == ("9.00", 2, 1)

    async def test_twenty_concurrent_identical_requests_debit_once(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer(balance="10")
        responses = await asyncio.gather(*(create(client, customer, **{"Idempotency-Key": "race"}) for _ in range(20)))
        assert {r.status_code for r in responses} == {201}
        assert len({r.content for r in responses}) == 1
        assert sum(1 for r in responses if "idempotent-replayed" not in r.headers) == 1
        assert await snapshot(sessionmaker, customer) == ("9.00", 2, 1)


class TestGet:
    async def test_get_own_order(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="5")
        created = (await create(client, customer)).json()
        response = await client.get(f"/v1/orders/{created['id']}", headers=auth(customer))
        assert (response.status_code, response.json()) == (200, created)

    async def test_another_accounts_order_is_404(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        owner, other = await make_customer(balance="5"), await make_customer(balance="5")
        order_id = (await create(client, owner)).json()["id"]
        response = await client.get(f"/v1/orders/{order_id}", headers=auth(other))
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
        missing = await client.get("/v1/orders/00000000", headers=auth(owner))
        assert missing.status_code == 404
        assert missing.json()["detail"] == response.json()["detail"]

    @pytest.mark.parametrize(
        ("order_id", "status"), [("a7e17a3e", 422), ("XYZ", 422), ("A7E17A3E0", 422), ("%00", 400)]
    )
    async def test_malformed_id_is_refused(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, order_id: str, status: int
    ) -> None:
        """A well-formed path with a wrong id is 422; a path holding a NUL is a malformed request (400)."""
        customer = await make_customer()
        assert (await client.get(f"/v1/orders/{order_id}", headers=auth(customer))).status_code == status


class TestList:
    async def walk(self, client: httpx.AsyncClient, customer: Customer, **params: object) -> list[str]:
        seen: list[str] = []
        cursor: str | None = None
        while True:
            query = {**params, **({"starting_after": cursor} if cursor else {})}
            page = (await client.get("/v1/orders", params=query, headers=auth(customer))).json()
            seen += [o["id"] for o in page["data"]]
            if not page["has_more"]:
                return seen
            cursor = page["data"][-1]["id"]

    async def test_newest_first_and_default_limit(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="30")
        ids = [(await create(client, customer, quantity=500)).json()["id"] for _ in range(22)]
        page = (await client.get("/v1/orders", headers=auth(customer))).json()
        assert [o["id"] for o in page["data"]] == ids[::-1][:20]
        assert page["has_more"] is True

    async def test_walk_both_directions_while_orders_arrive(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="30")
        ids = [(await create(client, customer, quantity=500)).json()["id"] for _ in range(7)]
        newest_first = ids[::-1]

        # Forwards (older), 3 per page, with a new order arriving before each page.
        forwards: list[str] = []
        cursor = None
        arrived = []
        while True:
            arrived.append((await create(client, customer, quantity=500)).json()["id"])
            params = {"limit": 3, **({"starting_after": cursor} if cursor else {})}
            page = (await client.get("/v1/orders", params=params, headers=auth(customer))).json()
            forwards += [o["id"] for o in page["data"]]
            if not page["has_more"]:
                break
            cursor = page["data"][-1]["id"]
        assert forwards[: len(arrived[:1])] == arrived[:1]  # the first page starts at the then-newest
        assert [i for i in forwards if i in ids] == newest_first  # no gap, no repeat
        assert len(forwards) == len(set(forwards))

        # Backwards (newer) from the oldest order: every newer order, including new arrivals.
        backwards: list[str] = []
        cursor = ids[0]
        while True:
            arrived.append((await create(client, customer, quantity=500)).json()["id"])
            page = (
                await client.get("/v1/orders", params={"limit": 3, "ending_before": cursor}, headers=auth(customer))
            ).json()
            backwards = [o["id"] for o in page["data"]] + backwards
            if not page["has_more"]:
                break
            cursor = page["data"][0]["id"]
        assert backwards == (ids[1:] + arrived)[::-1]

    async def test_filters(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="10")
        await client.post("/v1/orders", json={"email": "Alpha@Example.com", "quantity": 500}, headers=auth(customer))
        beta = (
            await client.post("/v1/orders", json={"email": "beta@example.com", "quantity": 500}, headers=auth(customer))
        ).json()
        by_email = await self.walk(client, customer, email="BETA@example.com")
        assert by_email == [beta["id"]]
        assert len(await self.walk(client, customer, status="awaiting_confirmation")) == 2
        assert await self.walk(client, customer, status="pending") == []
        assert await self.walk(client, customer, status="completed") == []
        # REST statuses are snake_case; the stored (and legacy) words with a space are not one.
        spaced = await client.get("/v1/orders", params={"status": "awaiting confirmation"}, headers=auth(customer))
        assert (spaced.status_code, spaced.json()["errors"][0]["loc"]) == (422, ["query", "status"])
        created = datetime.fromisoformat(beta["created"])
        assert await self.walk(client, customer, created_gte=created.isoformat()) == [beta["id"]]
        assert beta["id"] not in await self.walk(client, customer, created_lt=created.isoformat())
        naive = created.replace(tzinfo=None).isoformat()
        assert await self.walk(client, customer, created_gte=naive) == [beta["id"]]

    @pytest.mark.parametrize(
        ("params", "code"),
        [
            ({"limit": 0}, "validation_error"),
            ({"limit": 101}, "validation_error"),
            ({"status": "nope"}, "validation_error"),
            ({"starting_after": "zz"}, "validation_error"),
            ({"starting_after": "00000000"}, "invalid_cursor"),
            ({"created_gte": "yesterday"}, "validation_error"),
            ({"created_gte": "0001-01-01T00:00:00+01:00"}, "invalid_params"),
            ({"created_lt": "9999-12-31T23:00:00-05:00"}, "invalid_params"),
        ],
    )
    async def test_bad_list_parameters_are_422(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, params: dict[str, object], code: str
    ) -> None:
        customer = await make_customer()
        response = await client.get("/v1/orders", params=params, headers=auth(customer))
        assert (response.status_code, response.json()["code"]) == (422, code)

    async def test_both_cursors_is_refused_whether_or_not_they_exist(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        customer = await make_customer(balance="5")
        a, b = [(await create(client, customer)).json()["id"] for _ in range(2)]
        for params in ({"starting_after": a, "ending_before": b}, {"starting_after": "00000000", "ending_before": b}):
            response = await client.get("/v1/orders", params=params, headers=auth(customer))
            assert (response.status_code, response.json()["code"]) == (422, "invalid_params")

    async def test_another_accounts_order_is_not_a_cursor(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        owner, other = await make_customer(balance="5"), await make_customer(balance="5")
        order_id = (await create(client, owner)).json()["id"]
        response = await client.get("/v1/orders", params={"starting_after": order_id}, headers=auth(other))
        assert (response.status_code, response.json()["code"]) == (422, "invalid_cursor")
