"""The console's catalogue: coupons, bonus tiers, the suppression list (a recipient's opt-out is
final), worker tokens, recipients and consent resends; and the customers' own CSV exports."""

from __future__ import annotations

import csv
import io
import uuid

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.operators.models import OperatorRole
from tests.admin.conftest import MakeOperator
from tests.conftest import MakeCustomer
from tests.support import confirm_recipient, place_as, unique_email

pytestmark = pytest.mark.usefixtures("fresh_throttle")


async def _actions(maker: async_sessionmaker[AsyncSession], object_type: str, object_id: str) -> list[str]:
    async with maker() as session:
        rows = await session.execute(
            sa.text("SELECT action FROM audit_log WHERE object_type = :t AND object_id = :i ORDER BY id"),
            {"t": object_type, "i": object_id},
        )
        return [r[0] for r in rows]


async def test_coupons_and_tiers(make_operator: MakeOperator, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    op = await make_operator(OperatorRole.ADMIN)
    code = f"cat{uuid.uuid4().hex[:8]}"
    created = await op.client.post(
        "/v1/admin/coupons", json={"code": code.upper(), "amount": "2.50", "max_redemptions": 3}, headers=op.headers
    )
    assert created.status_code == 201, created.text
    assert (created.json()["code"], created.json()["amount"]) == (code, "2.50")
    again = await op.client.post("/v1/admin/coupons", json={"code": code, "amount": "1.00"}, headers=op.headers)
    assert again.status_code == 409
    listed = (await op.client.get("/v1/admin/coupons")).json()["data"]
    assert any(c["code"] == code and not c["disabled"] for c in listed)
    disabled = await op.client.post(f"/v1/admin/coupons/{code}/disable", headers=op.headers)
    assert disabled.json()["disabled"] is True
    assert await _actions(sessionmaker, "coupon", code) == ["coupon.create", "coupon.disable"]

    threshold = f"{uuid.uuid4().int % 9000 + 900000}.00"
    tier = await op.client.put(
        "/v1/admin/bonus-tiers", json={"threshold": threshold, "percent": "2.5"}, headers=op.headers
    )
    assert tier.json() == {"threshold": threshold, "percent": "2.5"}
    assert {"threshold": threshold, "percent": "2.5"} in (await op.client.get("/v1/admin/bonus-tiers")).json()["data"]
    removed = await op.client.delete(f"/v1/admin/bonus-tiers/{threshold}", headers=op.headers)
    assert removed.status_code == 204
    assert threshold not in [t["threshold"] for t in (await op.client.get("/v1/admin/bonus-tiers")).json()["data"]]


async def test_suppression_by_an_operator_can_be_lifted_but_an_opt_out_is_final(
    make_operator: MakeOperator, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    op = await make_operator(OperatorRole.ADMIN)
    customer = await make_customer("5.00")
    address = unique_email("supp")
    await confirm_recipient(sessionmaker, customer, address)
    placed = await place_as(sessionmaker, customer.account_id, email=address, quantity=1000)
    added = await op.client.post("/v1/admin/suppressions", json={"email": address}, headers=op.headers)
    assert added.status_code == 204
    orders = (await op.client.get("/v1/admin/orders", params={"account_id": customer.account_id})).json()["data"]
    assert [(o["id"], o["status"]) for o in orders] == [(placed.order.public_id, "canceled")]
    state = (await op.client.get("/v1/admin/recipients", params={"email": address})).json()
    assert (state["opted_out"], state["opted_out_by"]) == (True, "operator")
    assert state["accounts"] == [customer.account_id]
    lifted = await op.client.delete("/v1/admin/suppressions", params={"email": address}, headers=op.headers)
    assert lifted.status_code == 204

    own = unique_email("own-opt-out")
    async with sessionmaker.begin() as session:
        await session.execute(sa.text("INSERT INTO suppressions (email, source) VALUES (:e, 'recipient')"), {"e": own})
    final = await op.client.delete("/v1/admin/suppressions", params={"email": own}, headers=op.headers)
    assert (final.status_code, final.json()["code"]) == (409, "opt_out_is_final")
    assert (await op.client.get("/v1/admin/recipients", params={"email": own})).json()["opted_out_by"] == "recipient"


async def test_resend_respects_the_one_message_per_interval_rule(
    make_operator: MakeOperator, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    op = await make_operator(OperatorRole.SUPPORT)
    customer = await make_customer("5.00")
    address = unique_email("resend")
    await place_as(sessionmaker, customer.account_id, email=address, quantity=500)  # asks the recipient
    state = (await op.client.get("/v1/admin/recipients", params={"email": address})).json()
    [request] = state["consents"]
    assert request["status"] == "requested"
    resent = await op.client.post(f"/v1/admin/consents/{request['id']}/resend", headers=op.headers)
    assert resent.status_code == 200
    assert resent.json() == {"queued": False}  # mailed a moment ago: the interval holds it back
    async with sessionmaker() as session:
        messages = (
            await session.execute(sa.text("SELECT count(*) FROM outbox WHERE consent_id = :c"), {"c": request["id"]})
        ).scalar_one()
    assert messages == 1
    async with sessionmaker.begin() as session:
        await session.execute(
            sa.text("UPDATE recipient_consents SET status = 'confirmed' WHERE id = :c"), {"c": request["id"]}
        )
    closed = await op.client.post(f"/v1/admin/consents/{request['id']}/resend", headers=op.headers)
    assert (closed.status_code, closed.json()["code"]) == (409, "consent_not_waiting")


async def test_worker_tokens(make_operator: MakeOperator, client: httpx.AsyncClient) -> None:
    op = await make_operator(OperatorRole.ADMIN)
    name = f"w-{uuid.uuid4().hex[:8]}"
    created = await op.client.post("/v1/admin/workers", json={"name": name}, headers=op.headers)
    assert created.status_code == 201
    token = created.json()["token"]
    claim = await client.post(
        "/v1/fulfilment/claim", json={"limit": 1, "lease_seconds": 60}, headers={"Authorization": f"Bearer {token}"}
    )
    assert claim.status_code == 200, claim.text
    assert (await op.client.post(f"/v1/admin/workers/{name}/revoke", headers=op.headers)).status_code == 204
    refused = await client.post(
        "/v1/fulfilment/claim", json={"limit": 1, "lease_seconds": 60}, headers={"Authorization": f"Bearer {token}"}
    )
    assert refused.status_code == 401
    assert any(w["name"] == name and w["revoked"] for w in (await op.client.get("/v1/admin/workers")).json()["data"])


async def test_customer_exports_read_back(
    client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    customer = await make_customer("9.00")
    other = await make_customer("1.00")
    address = unique_email("exp")
    await confirm_recipient(sessionmaker, customer, address)
    placed = await place_as(sessionmaker, customer.account_id, email=address, quantity=1500)
    await place_as(sessionmaker, other.account_id, email=unique_email("other"), quantity=500)
    auth = {"Authorization": f"Bearer {customer.api_key}"}
    orders = await client.get("/v1/orders/export", headers=auth)
    assert orders.status_code == 200
    assert orders.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(orders.text)))
    assert [(r["id"], r["price"], r["status"]) for r in rows] == [(placed.order.public_id, "1.50", "pending")]
    payments = list(csv.DictReader(io.StringIO((await client.get("/v1/payments/export", headers=auth)).text)))
    assert [(p["kind"], p["amount"], p["order_id"]) for p in payments] == [
        ("order", "-1.50", placed.order.public_id),
        ("credit", "9.00", ""),
    ]
    deposits = await client.get("/v1/deposits/export", headers=auth)
    assert list(csv.DictReader(io.StringIO(deposits.text))) == []
    assert (await client.get("/v1/orders/export")).status_code == 401


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("  =cmd", "'  =cmd"),
        ("\uff1dSUM(A1)", "'\uff1dSUM(A1)"),
        ("@x", "'@x"),
        ("-10.00", "-10.00"),
        ("plain", "plain"),
        (None, ""),
    ],
)
def test_csv_cells_never_run_as_formulas(value: str | None, written: str) -> None:
    from ordersvc.csv_export import cell

    assert cell(value) == written


async def test_a_coupon_expiry_out_of_range_is_refused(make_operator: MakeOperator) -> None:
    op = await make_operator(OperatorRole.ADMIN)
    body = {"code": f"x{uuid.uuid4().hex[:8]}", "amount": "1.00", "expires": "0001-01-01T00:00:00+01:00"}
    refused = await op.client.post("/v1/admin/coupons", json=body, headers=op.headers)
    assert refused.status_code == 422


@pytest.mark.parametrize("columns", [True, False], ids=["plain-columns", "entities"])
async def test_streams_walk_every_chunk(
    make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession], columns: bool
) -> None:
    """An export reads in chunks by id, newest first, whether its rows are plain columns (the id
    first) or entities: small chunks give every row once, in order."""
    from sqlmodel import col

    from ordersvc.ledger.models import Payment
    from ordersvc.pagination import stream_by_id

    customer = await make_customer("9.00")
    for i in range(4):
        await place_as(sessionmaker, customer.account_id, email=unique_email(f"chunk{i}"), quantity=500)
    owned = col(Payment.account_id) == customer.account_id
    stmt = sa.select(col(Payment.id), col(Payment.kind)) if columns else sa.select(Payment)
    async with sessionmaker() as session:
        every = [row async for row in stream_by_id(session, stmt.where(owned), col(Payment.id), chunk=2)]
        ids = [row.id for row in every]
        expected = (
            (await session.execute(sa.select(col(Payment.id)).where(owned).order_by(col(Payment.id).desc())))
            .scalars()
            .all()
        )
    assert ids == list(expected)
    assert len(ids) == 5  # the credit and four orders: three chunks, the last one short
