"""Prometheus metrics: off unless enabled; committed work only; routes by template."""

from __future__ import annotations

import re

import httpx

from tests.conftest import MakeCustomer
from tests.ops.conftest import app_client
from tests.orders.test_endpoints import auth


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in the exposition text (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}{re.escape('{' + wanted + '}') if labels else ''} (\S+)$"
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


class TestMetrics:
    async def test_metrics_are_off_by_default(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/metrics")).status_code == 404

    async def test_orders_requests_and_pool_are_measured(self, database_url: str, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="1")
        async with app_client(metrics_enabled=True) as (_, client):
            before = (await client.get("/metrics")).text
            placed = await client.post(
                "/v1/orders", json={"email": "a@example.com", "quantity": 500}, headers=auth(customer)
            )
            refused = await client.post(
                "/v1/orders", json={"email": "a@example.com", "quantity": 1000}, headers=auth(customer)
            )
            await client.get(f"/v1/orders/{placed.json()['id']}", headers=auth(customer))
            await client.get("/no/such/path/123")
            after = (await client.get("/metrics")).text
        assert (placed.status_code, refused.status_code) == (201, 402)
        # The refused order rolled back: it is not counted.
        assert sample(after, "ordersvc_orders_placed_total") - sample(before, "ordersvc_orders_placed_total") == 1
        labels = {"method": "POST", "route": "/v1/orders"}
        assert sample(after, "ordersvc_http_requests_total", **labels, status="201") >= 1
        assert sample(after, "ordersvc_http_requests_total", **labels, status="402") >= 1
        # Ids and unknown paths never become labels.
        assert 'route="/v1/orders/{order_id}"' in after
        assert placed.json()["id"] not in after
        assert "/no/such/path" not in after
        assert 'route="unmatched"' in after
        assert "ordersvc_http_request_duration_seconds_bucket" in after
        assert "ordersvc_db_pool_connections_in_use" in after
        assert "ordersvc_outbox_backlog" in after

    async def test_refunds_are_counted_when_committed(self, database_url: str, make_customer: MakeCustomer) -> None:
        customer = await make_customer(balance="5")
        async with app_client(metrics_enabled=True) as (_, client):
            order = await client.post(
                "/v1/orders", json={"email": "r@example.com", "quantity": 2000}, headers=auth(customer)
            )
            before = (await client.get("/metrics")).text
            await client.post(f"/v1/orders/{order.json()['id']}/cancel", headers=auth(customer))
            after = (await client.get("/metrics")).text
        assert sample(after, "ordersvc_refunds_total") - sample(before, "ordersvc_refunds_total") == 1
        assert sample(after, "ordersvc_refunded_mills_total") - sample(before, "ordersvc_refunded_mills_total") == 2000
