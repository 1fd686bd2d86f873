"""REST /v1/account and /v1/api-keys."""

from __future__ import annotations

import re

import httpx

from tests.conftest import MakeCustomer
from tests.orders.test_endpoints import auth


class TestAccount:
    async def test_account(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="3.5")
        body = (await client.get("/v1/account", headers=auth(customer))).json()
        assert (body["email"], body["balance"], body["currency"]) == (customer.email, "3.50", "USD")
        assert body["created"].endswith("Z") or body["created"].endswith("+00:00")


class TestApiKeys:
    async def test_create_list_revoke(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer()
        created = await client.post("/v1/api-keys", headers=auth(customer))
        assert created.status_code == 201
        new = created.json()
        assert re.fullmatch(r"osk_[A-Za-z0-9_-]{43}", new["api_key"])
        assert new["api_key"].startswith(new["prefix"])
        # The new key works; listings never show a whole key again.
        listed = await client.get("/v1/api-keys", headers={"X-API-Key": new["api_key"]})
        assert [k["prefix"] for k in listed.json()["data"]] == [customer.api_key[:12], new["prefix"]]
        assert new["api_key"] not in listed.text
        assert all(k["revoked"] is None for k in listed.json()["data"])

        assert (await client.delete(f"/v1/api-keys/{customer.api_key[:12]}", headers=auth(customer))).status_code == 204
        keys = (await client.get("/v1/api-keys", headers={"X-API-Key": new["api_key"]})).json()["data"]
        assert keys[0]["revoked"] is not None
        assert keys[1]["revoked"] is None
        again = await client.delete(f"/v1/api-keys/{customer.api_key[:12]}", headers={"X-API-Key": new["api_key"]})
        assert (again.status_code, again.json()["code"]) == (404, "not_found")

    async def test_cannot_revoke_another_accounts_key(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer
    ) -> None:
        victim, attacker = await make_customer(), await make_customer()
        response = await client.delete(f"/v1/api-keys/{victim.api_key[:12]}", headers=auth(attacker))
        assert response.status_code == 404
        assert (await client.get("/v1/account", headers=auth(victim))).status_code == 200

    async def test_odd_prefix_is_404(self, client: httpx.AsyncClient, make_customer: MakeCustomer) -> None:
        customer = await make_customer()
        for prefix in ("x", "osk_%00%00%00%00%00%00%00%00", "osk_" + "a" * 150):
            # 400: a NUL in the path is a malformed request
            assert (await client.delete(f"/v1/api-keys/{prefix}", headers=auth(customer))).status_code in (
                400,
                404,
                422,
            )
