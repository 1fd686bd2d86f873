"""Every console route, for every kind of caller: anonymous, a customer (API key), a `support`
operator, an `admin` operator. The table below must name every `/v1/admin` operation, so a new
route cannot be added without deciding who may call it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.operators.models import OperatorRole
from tests.admin.conftest import MakeOperator
from tests.conftest import MakeCustomer

pytestmark = pytest.mark.usefixtures("fresh_throttle")

PUBLIC = {"admin_login", "admin_set_password"}
ADMIN_ONLY = {
    "admin_customers_adjust",
    "admin_deposits_assign",
    "admin_operators_list",
    "admin_operators_create",
    "admin_operators_update",
    "admin_coupons_create",
    "admin_coupons_disable",
    "admin_bonus_tiers_set",
    "admin_bonus_tiers_remove",
    "admin_suppressions_add",
    "admin_suppressions_remove",
    "admin_workers_list",
    "admin_workers_create",
    "admin_workers_revoke",
}
SUPPORT = {
    "admin_me",
    "admin_logout",
    "admin_totp_start",
    "admin_totp_confirm",
    "admin_overview",
    "admin_customers_list",
    "admin_customers_export",
    "admin_customers_get",
    "admin_customers_payments",
    "admin_customers_payments_export",
    "admin_customers_deposits",
    "admin_customers_consents",
    "admin_customers_revoke_key",
    "admin_customers_end_sessions",
    "admin_customers_disable",
    "admin_customers_enable",
    "admin_orders_list",
    "admin_orders_export",
    "admin_orders_cancel",
    "admin_deposits_unmatched",
    "admin_audit_list",
    "admin_audit_export",
    "admin_coupons_list",
    "admin_bonus_tiers_list",
    "admin_suppressions_list",
    "admin_recipients_get",
    "admin_consents_resend",
    "admin_deposit_events_list",
}


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str


def admin_routes(app: FastAPI) -> list[Operation]:
    """Every `/v1/admin` operation, as the OpenAPI document declares it."""
    return [
        Operation(op["operationId"], method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        if path.startswith("/v1/admin/")
        for method, op in item.items()
    ]


def test_every_console_route_is_classified(app: FastAPI) -> None:
    ids = {r.operation_id for r in admin_routes(app)}
    assert ids == PUBLIC | ADMIN_ONLY | SUPPORT


def _request(route: Operation, account_id: int, customer_email: str) -> tuple[str, str, dict[str, object] | None]:
    method = route.method
    path = (
        route.path.replace("{account_id}", str(account_id))
        .replace("{prefix}", "osk_nope")
        .replace("{order_id}", "ABCDEF01")
        .replace("{deposit_id}", "999999999")
        .replace("{operator_id}", "999999999")
        .replace("{code}", "nosuchcoupon")
        .replace("{threshold}", "987654.00")
        .replace("{consent_id}", "999999999")
        .replace("{name}", "no-such-worker")
    )
    bodies: dict[str, dict[str, object]] = {
        "admin_customers_adjust": {"direction": "credit", "amount": "1.00", "reason": "authorization table"},
        "admin_deposits_assign": {"email": customer_email},
        "admin_operators_create": {"email": f"new-{uuid.uuid4().hex[:8]}@example.com", "role": "support"},
        "admin_operators_update": {"role": "support"},
        "admin_totp_confirm": {"code": "000000"},
        "admin_coupons_create": {"code": f"auth{uuid.uuid4().hex[:8]}", "amount": "1.00"},
        "admin_bonus_tiers_set": {"threshold": "987654.00", "percent": "1"},
        "admin_suppressions_add": {"email": f"auth-{uuid.uuid4().hex[:8]}@example.com"},
        "admin_workers_create": {"name": f"auth-{uuid.uuid4().hex[:8]}"},
        "admin_login": {"email": f"nobody-{uuid.uuid4().hex[:8]}@example.com", "password": "wrong password"},
        "admin_set_password": {"token": "x" * 30, "password": "a long enough password"},
    }
    if route.operation_id in ("admin_recipients_get", "admin_suppressions_remove"):
        path += "?email=nobody-suppressed%40example.com"  # the address is a query parameter, kept out of logs
    return method, path, bodies.get(str(route.operation_id))


async def test_route_by_role_table(
    app: FastAPI, client: httpx.AsyncClient, make_operator: MakeOperator, make_customer: MakeCustomer,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:  # fmt: skip
    customer = await make_customer("5.00")
    support = await make_operator(OperatorRole.SUPPORT)
    admin = await make_operator(OperatorRole.ADMIN)
    table: list[tuple[str, str, int | None, int, int, int]] = []
    for route in admin_routes(app):
        operation = str(route.operation_id)
        if operation == "admin_logout":
            continue  # would end the session the rest of the table uses; covered in test_console_api
        method, path, body = _request(route, customer.account_id, customer.email)
        anonymous = await client.request(method, path, json=body)
        as_customer = await client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {customer.api_key}"}
        )
        as_support = await support.client.request(method, path, json=body, headers=support.headers)
        as_admin = await admin.client.request(method, path, json=body, headers=admin.headers)
        table.append((operation, method, None, anonymous.status_code, as_customer.status_code, as_support.status_code))
        if operation in PUBLIC:
            assert anonymous.status_code in (400, 401, 422), (operation, anonymous.text)
            continue
        assert anonymous.status_code == 401, (operation, anonymous.text)
        assert anonymous.json()["code"] == "operator_session_required"
        assert as_customer.status_code == 401, (operation, as_customer.text)
        if operation in ADMIN_ONLY:
            assert (as_support.status_code, as_support.json()["code"]) == (403, "operator_role_forbidden"), operation
        else:
            assert as_support.status_code not in (401, 403, 500), (operation, as_support.text)
        assert as_admin.status_code not in (401, 403, 500), (operation, as_admin.text)
    assert len(table) == len(PUBLIC | ADMIN_ONLY | SUPPORT) - 1
