"""The operator's console API (`/v1/admin`): operators, sign-in with a mandatory second factor,
roles, money moves with reasons, the audit log and exports."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.accounts.models import BrowserSession
from ordersvc.accounts.tokens import hash_secret, new_secret
from ordersvc.config import get_settings
from ordersvc.money import format_usd
from ordersvc.operators.models import OperatorRole
from ordersvc.timestamps import utc_now
from tests.admin.conftest import PASSWORD, MakeOperator, code_now, new_operator
from tests.conftest import MakeCustomer
from tests.support import confirm_recipient, place_as, run_cli, unique_email

pytestmark = pytest.mark.usefixtures("fresh_throttle")


async def _audit_entries(maker: async_sessionmaker[AsyncSession], **where: object) -> list[dict[str, object]]:
    conditions = " AND ".join(f"{k} = :{k}" for k in where)
    async with maker() as session:
        rows = await session.execute(
            sa.text(
                "SELECT actor, action, object_type, object_id, before, after, reason FROM audit_log"
                f" WHERE {conditions} ORDER BY id"
            ),
            where,
        )
        return [dict(r._mapping) for r in rows]


class TestSignIn:
    async def test_first_sign_in_enrols_totp_then_every_sign_in_needs_a_code(
        self, app: FastAPI, client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email, token = await new_operator(sessionmaker, OperatorRole.SUPPORT)
        assert (
            await client.post("/v1/admin/auth/set-password", json={"token": token, "password": PASSWORD})
        ).status_code == 200
        wrong_password = await client.post("/v1/admin/auth/login", json={"email": email, "password": "wrong" * 3})
        expected = {k: v for k, v in wrong_password.json().items() if k != "request_id"}
        # The link works once.
        again = await client.post("/v1/admin/auth/set-password", json={"token": token, "password": PASSWORD})
        assert (again.status_code, again.json()["code"]) == (400, "invalid_operator_link")

        login = await client.post("/v1/admin/auth/login", json={"email": email, "password": PASSWORD})
        assert login.json()["stage"] == "enrol_totp"
        csrf = login.json()["csrf_token"]
        cookie = login.headers["set-cookie"]
        assert "ordersvc_operator=" in cookie
        assert "HttpOnly" in cookie
        assert "Path=/v1/admin" in cookie
        assert "samesite=strict" in cookie.lower()
        # Before enrolment, the session reaches nothing else.
        blocked = await client.get("/v1/admin/overview")
        assert (blocked.status_code, blocked.json()["code"]) == (403, "totp_enrolment_required")
        secret = (await client.post("/v1/admin/auth/totp/start", headers={"X-CSRF-Token": csrf})).json()["secret"]
        wrong = await client.post(
            "/v1/admin/auth/totp/confirm", json={"code": "000000"}, headers={"X-CSRF-Token": csrf}
        )
        assert wrong.status_code == 401
        enrolment_cookie = client.cookies["ordersvc_operator"]
        ok = await client.post(
            "/v1/admin/auth/totp/confirm", json={"code": code_now(secret)}, headers={"X-CSRF-Token": csrf}
        )
        assert ok.json()["stage"] == "signed_in"
        # The enrolment session ended: a new cookie and CSRF token replace it.
        assert client.cookies["ordersvc_operator"] != enrolment_cookie
        assert ok.json()["csrf_token"] != csrf
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=str(client.base_url)) as old:
            old.cookies.set("ordersvc_operator", enrolment_cookie, path="/v1/admin")
            assert (await old.get("/v1/admin/me")).status_code == 401
        csrf = ok.json()["csrf_token"]
        assert (await client.get("/v1/admin/overview")).status_code == 200
        assert (await client.post("/v1/admin/auth/logout", headers={"X-CSRF-Token": csrf})).status_code == 204
        assert (await client.get("/v1/admin/overview")).status_code == 401

        # The right password without the code, or with a wrong or spent one, is answered as a
        # wrong password is: the answer never tells that the password was right.
        used = code_now(secret)  # the step the confirmation used
        for code in (None, "000000", used):
            refused = await client.post(
                "/v1/admin/auth/login", json={"email": email, "password": PASSWORD, "totp_code": code}
            )
            answer = {k: v for k, v in refused.json().items() if k != "request_id"}
            assert (refused.status_code, answer) == (401, expected), code
        fresh = await client.post(
            "/v1/admin/auth/login", json={"email": email, "password": PASSWORD, "totp_code": code_now(secret, 1)}
        )
        assert fresh.status_code == 200
        assert fresh.json()["stage"] == "signed_in"
        actions = [e["action"] for e in await _audit_entries(sessionmaker, actor=email)]
        assert actions[:3] == ["operator.set_password", "operator.sign_in_failed", "operator.sign_in"]
        assert "operator.totp_enrol" in actions
        assert "operator.sign_in_failed" in actions
        assert "operator.sign_out" in actions

    async def test_enrolment_codes_are_throttled(
        self, client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email, token = await new_operator(sessionmaker, OperatorRole.SUPPORT)
        await client.post("/v1/admin/auth/set-password", json={"token": token, "password": PASSWORD})
        csrf = (await client.post("/v1/admin/auth/login", json={"email": email, "password": PASSWORD})).json()[
            "csrf_token"
        ]
        secret = (await client.post("/v1/admin/auth/totp/start", headers={"X-CSRF-Token": csrf})).json()["secret"]
        answers = []
        for _ in range(8):
            wrong = await client.post(
                "/v1/admin/auth/totp/confirm", json={"code": "000000"}, headers={"X-CSRF-Token": csrf}
            )
            answers.append(wrong.status_code)
        assert answers[:5] == [401] * 5
        assert answers[5:] == [429] * 3
        # Past the limit even the right code waits for the window.
        right = await client.post(
            "/v1/admin/auth/totp/confirm", json={"code": code_now(secret)}, headers={"X-CSRF-Token": csrf}
        )
        assert (right.status_code, right.json()["code"]) == (429, "too_many_attempts")

    async def test_wrong_password_says_nothing_more_and_is_audited(
        self, client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        email, token = await new_operator(sessionmaker, OperatorRole.ADMIN)
        await client.post("/v1/admin/auth/set-password", json={"token": token, "password": PASSWORD})
        for who in (email, unique_email("nobody")):
            failed = await client.post("/v1/admin/auth/login", json={"email": who, "password": "not the password"})
            assert (failed.status_code, failed.json()["code"]) == (401, "operator_sign_in_failed")
        assert [e["action"] for e in await _audit_entries(sessionmaker, actor=email)][-1] == "operator.sign_in_failed"

    async def test_idle_session_ends(
        self, make_operator: MakeOperator, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        op = await make_operator(OperatorRole.SUPPORT)
        assert (await op.client.get("/v1/admin/overview")).status_code == 200
        idle = get_settings().operator_idle_minutes
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.text(
                    "UPDATE operator_sessions SET last_seen_at = now() - make_interval(mins => :m)"
                    " WHERE operator_id = (SELECT id FROM operators WHERE email = :e)"
                ),
                {"m": idle + 1, "e": op.email},
            )
        ended = await op.client.get("/v1/admin/overview")
        assert (ended.status_code, ended.json()["code"]) == (401, "operator_session_required")

    async def test_disabled_operator_is_out_at_once(self, make_operator: MakeOperator) -> None:
        boss = await make_operator(OperatorRole.ADMIN)
        helper = await make_operator(OperatorRole.SUPPORT)
        helper_id = (await helper.client.get("/v1/admin/me")).json()["operator"]["id"]
        changed = await boss.client.patch(
            f"/v1/admin/operators/{helper_id}", json={"disabled": True}, headers=boss.headers
        )
        assert changed.status_code == 200
        assert changed.json()["disabled"] is True
        assert (await helper.client.get("/v1/admin/overview")).status_code == 401

    async def test_changes_need_the_csrf_token(self, make_operator: MakeOperator, make_customer: MakeCustomer) -> None:
        op = await make_operator(OperatorRole.ADMIN)
        customer = await make_customer()
        body = {"direction": "credit", "amount": "1.00", "reason": "test"}
        for headers in ({}, {"X-CSRF-Token": "0" * 64}):
            refused = await op.client.post(
                f"/v1/admin/customers/{customer.account_id}/adjustments", json=body, headers=headers
            )
            assert (refused.status_code, refused.json()["code"]) == (403, "csrf_failed")


class TestCustomerCredentialsNeverReachTheConsole:
    async def test_api_key_and_customer_session_are_refused(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer("5.00")
        token = new_secret()
        async with sessionmaker.begin() as session:
            session.add(
                BrowserSession(
                    account_id=customer.account_id,
                    token_hash=hash_secret(token),
                    expires_at=utc_now().replace(year=utc_now().year + 1),
                )
            )
        attempts = [
            {"headers": {"Authorization": f"Bearer {customer.api_key}"}},
            {"headers": {"X-API-Key": customer.api_key}},
            {"cookies": {"ordersvc_session": token}},
            # A customer's session token presented as the operator cookie is no operator session.
            {"cookies": {"ordersvc_operator": token}},
        ]
        for extra in attempts:
            for path in ("/v1/admin/overview", "/v1/admin/customers", "/v1/admin/me"):
                client.cookies.clear()
                for name, value in extra.get("cookies", {}).items():
                    client.cookies.set(name, value)
                response = await client.get(path, headers=extra.get("headers", {}))
                assert (response.status_code, response.json()["code"]) == (401, "operator_session_required"), (
                    path,
                    extra,
                )


class TestMoney:
    async def test_credit_with_reason_moves_the_ledger_and_is_audited(
        self, make_operator: MakeOperator, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        op = await make_operator(OperatorRole.ADMIN)
        customer = await make_customer("1.00")
        url = f"/v1/admin/customers/{customer.account_id}/adjustments"
        body = {"direction": "credit", "amount": "10.00", "reason": "goodwill, ticket 4711"}
        key = {"Idempotency-Key": uuid.uuid4().hex, **op.headers}
        first = await op.client.post(url, json=body, headers=key)
        assert first.status_code == 201, first.text
        assert first.json()["balance"] == "11.00"
        payment = first.json()["payment"]
        assert (payment["kind"], payment["amount"], payment["description"]) == (
            "credit",
            "10.00",
            "goodwill, ticket 4711",
        )
        me = (await op.client.get("/v1/admin/me")).json()["operator"]
        assert payment["operator_id"] == me["id"]
        replay = await op.client.post(url, json=body, headers=key)
        assert replay.status_code == 201
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json() == first.json()
        detail = (await op.client.get(f"/v1/admin/customers/{customer.account_id}")).json()
        assert detail["customer"]["balance"] == "11.00"
        entries = await _audit_entries(sessionmaker, object_type="account", object_id=str(customer.account_id))
        assert [(e["actor"], e["action"], e["reason"]) for e in entries] == [
            (op.email, "payment.credit", "goodwill, ticket 4711")
        ]
        assert entries[0]["before"] == {"balance": "1.00"}
        assert entries[0]["after"]["balance"] == "11.00"
        audit = (
            await op.client.get("/v1/admin/audit", params={"object_type": "account", "object_id": customer.account_id})
        ).json()
        assert [e["action"] for e in audit["data"]] == ["payment.credit"]

    async def test_debit_never_goes_below_zero_and_needs_a_reason(
        self, make_operator: MakeOperator, make_customer: MakeCustomer
    ) -> None:
        op = await make_operator(OperatorRole.ADMIN)
        customer = await make_customer("3.00")
        url = f"/v1/admin/customers/{customer.account_id}/adjustments"
        over = await op.client.post(
            url, json={"direction": "debit", "amount": "3.01", "reason": "x"}, headers=op.headers
        )
        assert (over.status_code, over.json()["code"]) == (402, "insufficient_balance")
        blank = await op.client.post(
            url, json={"direction": "debit", "amount": "1.00", "reason": "   "}, headers=op.headers
        )
        assert (blank.status_code, blank.json()["code"]) == (422, "reason_required")
        zero = await op.client.post(
            url, json={"direction": "credit", "amount": "0.00", "reason": "x"}, headers=op.headers
        )
        assert zero.status_code == 422
        exact = await op.client.post(
            url, json={"direction": "debit", "amount": "3.00", "reason": "chargeback"}, headers=op.headers
        )
        assert exact.status_code == 201
        assert exact.json()["balance"] == "0.00"
        assert exact.json()["payment"]["kind"] == "debit"
        assert exact.json()["payment"]["amount"] == "-3.00"
        missing = await op.client.post(
            "/v1/admin/customers/999999999999/adjustments",
            json={"direction": "credit", "amount": "1.00", "reason": "x"},
            headers={"Idempotency-Key": "k", **op.headers},
        )  # fmt: skip
        assert (missing.status_code, missing.json()["code"]) == (404, "customer_not_found")

    async def test_concurrent_debits_never_overdraw(
        self, make_operator: MakeOperator, make_customer: MakeCustomer
    ) -> None:
        op = await make_operator(OperatorRole.ADMIN)
        customer = await make_customer("5.00")
        url = f"/v1/admin/customers/{customer.account_id}/adjustments"
        results = await asyncio.gather(
            *(
                op.client.post(url, json={"direction": "debit", "amount": "1.00", "reason": "race"}, headers=op.headers)
                for _ in range(8)
            )
        )
        assert sorted(r.status_code for r in results) == [201] * 5 + [402] * 3
        assert (await op.client.get(f"/v1/admin/customers/{customer.account_id}")).json()["customer"][
            "balance"
        ] == "0.00"

    async def test_audited_balances_are_the_ledgers_under_racing_orders(
        self, make_operator: MakeOperator, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        """Each adjustment's audited `before` is the balance just before its own payment, even with
        orders debiting the same account at the same time: the sum of every earlier payment."""
        op = await make_operator(OperatorRole.ADMIN)
        customer = await make_customer("10.00")
        recipient = unique_email("audit-race")
        await confirm_recipient(sessionmaker, customer, recipient)
        url = f"/v1/admin/customers/{customer.account_id}/adjustments"
        moves = [
            op.client.post(
                url,
                json={"direction": "credit" if i % 2 else "debit", "amount": "0.50", "reason": f"race {i}"},
                headers={**op.headers, "Idempotency-Key": f"race-{uuid.uuid4().hex}"},
            )
            for i in range(6)
        ]
        orders = [place_as(sessionmaker, customer.account_id, email=recipient, quantity=500) for _ in range(6)]
        results = await asyncio.gather(*moves, *orders)
        assert [r.status_code for r in results[:6]] == [201] * 6
        entries = await _audit_entries(sessionmaker, object_type="account", object_id=str(customer.account_id))
        assert len(entries) == 6
        async with sessionmaker() as session:
            payments = (
                await session.execute(
                    sa.text("SELECT id, amount_mills FROM payments WHERE account_id = :a ORDER BY id"),
                    {"a": customer.account_id},
                )
            ).all()
        assert sum(1 for _, amount in payments if amount == -500) == 9  # 6 orders and 3 manual debits
        for entry in entries:
            after = entry["after"]
            assert isinstance(after, dict)
            earlier = sum(amount for pid, amount in payments if pid < after["payment_id"])
            assert entry["before"] == {"balance": format_usd(earlier)}, (entry, payments)
            assert after["balance"] == format_usd(earlier + (500 if after["amount"] == "0.50" else -500))

    async def test_support_may_not_move_money(self, make_operator: MakeOperator, make_customer: MakeCustomer) -> None:
        op = await make_operator(OperatorRole.SUPPORT)
        customer = await make_customer()
        refused = await op.client.post(
            f"/v1/admin/customers/{customer.account_id}/adjustments",
            json={"direction": "credit", "amount": "1.00", "reason": "x"}, headers=op.headers,
        )  # fmt: skip
        assert (refused.status_code, refused.json()["code"]) == (403, "operator_role_forbidden")

    async def test_cli_credit_is_audited_as_the_local_operator(
        self, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        customer = await make_customer()
        result = run_cli("payments", "credit", customer.email, "2.50", "--description", "wire 123")
        assert result.returncode == 0, result.stderr
        entries = await _audit_entries(sessionmaker, object_type="account", object_id=str(customer.account_id))
        assert len(entries) == 1
        assert str(entries[0]["actor"]).startswith("cli:")
        assert (entries[0]["action"], entries[0]["reason"]) == ("payment.credit", "wire 123")

    async def test_overview_balances_equal_the_ledger(
        self, make_operator: MakeOperator, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        op = await make_operator(OperatorRole.SUPPORT)
        overview = (await op.client.get("/v1/admin/overview")).json()
        async with sessionmaker() as session:
            ledger_sum = (await session.execute(sa.text("SELECT sum(amount_mills) FROM payments"))).scalar_one()
        assert overview["balances_held"] == format_usd(int(ledger_sum))
        assert len(overview["days"]) == 30


class TestOrdersAndDeposits:
    async def test_cancel_any_order_with_refund(
        self, make_operator: MakeOperator, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        op = await make_operator(OperatorRole.SUPPORT)
        customer = await make_customer("10.00")
        recipient = unique_email("rcpt")
        await confirm_recipient(sessionmaker, customer, recipient)
        placed = await place_as(sessionmaker, customer.account_id, email=recipient, quantity=1000)
        listed = (await op.client.get("/v1/admin/orders", params={"account_id": customer.account_id})).json()["data"]
        assert [o["id"] for o in listed] == [placed.order.public_id]
        by_address = await op.client.get("/v1/admin/orders", params={"recipient": f" {recipient.upper()} "})
        assert [o["id"] for o in by_address.json()["data"]] == [placed.order.public_id]  # the mailbox, any case
        canceled = await op.client.post(f"/v1/admin/orders/{placed.order.public_id}/cancel", headers=op.headers)
        assert canceled.status_code == 200, canceled.text
        assert (canceled.json()["order"]["status"], canceled.json()["refund"]) == ("canceled", "1.00")
        detail = (await op.client.get(f"/v1/admin/customers/{customer.account_id}")).json()
        assert detail["customer"]["balance"] == "10.00"
        again = await op.client.post(f"/v1/admin/orders/{placed.order.public_id}/cancel", headers=op.headers)
        assert (again.status_code, again.json()["code"]) == (409, "order_not_cancelable")
        assert [e["action"] for e in await _audit_entries(sessionmaker, object_id=placed.order.public_id)] == [
            "order.cancel"
        ]

    async def test_assign_unmatched_deposit(
        self, make_operator: MakeOperator, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        admin_op = await make_operator(OperatorRole.ADMIN)
        support_op = await make_operator(OperatorRole.SUPPORT)
        customer = await make_customer()
        async with sessionmaker.begin() as session:
            deposit_id = (
                await session.execute(
                    sa.text(
                        "INSERT INTO deposits (processor, external_id, amount_mills, status, payload)"
                        " VALUES ('chain', :x, 25000, 'unmatched', '{}') RETURNING id"
                    ),
                    {"x": uuid.uuid4().hex},
                )
            ).scalar_one()
        unmatched = (await support_op.client.get("/v1/admin/deposits/unmatched")).json()["data"]
        assert deposit_id in [d["id"] for d in unmatched]
        refused = await support_op.client.post(
            f"/v1/admin/deposits/{deposit_id}/assign", json={"email": customer.email}, headers=support_op.headers
        )
        assert refused.status_code == 403
        assigned = await admin_op.client.post(
            f"/v1/admin/deposits/{deposit_id}/assign", json={"email": customer.email}, headers=admin_op.headers
        )
        assert assigned.status_code == 200, assigned.text
        assert (assigned.json()["status"], assigned.json()["account_id"]) == ("credited", customer.account_id)
        twice = await admin_op.client.post(
            f"/v1/admin/deposits/{deposit_id}/assign", json={"email": customer.email}, headers=admin_op.headers
        )
        assert twice.status_code == 409
        assert [
            e["action"] for e in await _audit_entries(sessionmaker, object_type="deposit", object_id=str(deposit_id))
        ] == ["deposit.assign"]


class TestAuditAndExports:
    async def test_audit_log_is_insert_only(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        for statement in ("UPDATE audit_log SET reason = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            async with sessionmaker.begin() as session:
                await session.execute(sa.text("INSERT INTO audit_log (actor, action) VALUES ('t', 't')"))
            with pytest.raises(sa.exc.DBAPIError, match="insert-only"):
                async with sessionmaker.begin() as session:
                    await session.execute(sa.text(statement))

    async def test_exports_stream_csv_that_reads_back(
        self, make_operator: MakeOperator, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        op = await make_operator(OperatorRole.ADMIN)
        customer = await make_customer("4.00")
        recipient = "=1+" + unique_email("x")
        await confirm_recipient(sessionmaker, customer, recipient)
        await place_as(sessionmaker, customer.account_id, email=recipient, quantity=500)
        response = await op.client.get("/v1/admin/orders/export", params={"account_id": customer.account_id})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert len(rows) == 1
        assert rows[0]["price"] == "0.50"
        assert rows[0]["email"] == "'" + recipient.lower()
        await op.client.post(
            f"/v1/admin/customers/{customer.account_id}/adjustments",
            json={"direction": "debit", "amount": "1.00", "reason": "export test"}, headers=op.headers,
        )  # fmt: skip
        audit_csv = await op.client.get(
            "/v1/admin/audit/export", params={"object_type": "account", "object_id": customer.account_id}
        )
        audit_rows = list(csv.DictReader(io.StringIO(audit_csv.text)))
        assert [(r["action"], r["reason"], r["actor"]) for r in audit_rows] == [
            ("payment.debit", "export test", op.email)
        ]
        # Each export is audited itself: who took which list out, with the filters.
        async with sessionmaker() as session:
            rows_out = (
                await session.execute(
                    sa.text(
                        "SELECT action, after FROM audit_log WHERE actor = :a AND action LIKE 'export.%' ORDER BY id"
                    ),
                    {"a": op.email},
                )
            ).all()
        assert [(r[0], r[1]) for r in rows_out] == [
            ("export.orders", {"filters": {"account_id": customer.account_id}}),
            ("export.audit", {"filters": {"object_type": "account", "object_id": str(customer.account_id)}}),
        ]


async def test_cli_creates_an_operator_whose_link_works(client: httpx.AsyncClient) -> None:
    email = unique_email("cli-op")
    created = run_cli("operators", "create", email, "--role", "support", "--json")
    assert created.returncode == 0, created.stderr
    record = json.loads(created.stdout)
    assert (record["email"], record["role"], record["totp"]) == (email, "support", False)
    token = record["link"].split("/set-password/", 1)[1]
    assert (
        await client.post("/v1/admin/auth/set-password", json={"token": token, "password": PASSWORD})
    ).status_code == 200
    listed = run_cli("operators", "list", "--json")
    assert any(o["email"] == email and o["password"] for o in json.loads(listed.stdout))
    bad_role = run_cli("operators", "create", unique_email("x"), "--role", "owner")
    assert bad_role.returncode != 0
    assert "admin" in bad_role.stderr


async def test_operator_totp_secret_is_sealed_at_rest(
    make_operator: MakeOperator, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    op = await make_operator(OperatorRole.SUPPORT)
    async with sessionmaker() as session:
        stored = (
            await session.execute(sa.text("SELECT totp_secret FROM operators WHERE email = :e"), {"e": op.email})
        ).scalar_one()
    assert op.secret not in stored
    assert op.secret.lower() not in stored.lower()


class TestOverview:
    async def test_closed_days_are_summed_once_and_today_live(
        self, make_operator: MakeOperator, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        op = await make_operator(OperatorRole.SUPPORT)
        customer = await make_customer("1.00")

        async def backdated_credit(mills: int, days_ago: int) -> None:
            # A payment of a past day, as the ledger would have written it then (balance moved too).
            async with sessionmaker.begin() as session:
                await session.execute(
                    sa.text(
                        "INSERT INTO payments (account_id, kind, amount_mills, description, created_at)"
                        " VALUES (:a, 'credit', :m, 'backdated', now() - make_interval(days => :d))"
                    ),
                    {"a": customer.account_id, "m": mills, "d": days_ago},
                )
                await session.execute(
                    sa.text(
                        "UPDATE accounts SET balance_mills = balance_mills + :m, payments_count = payments_count + 1"
                        " WHERE id = :a"
                    ),
                    {"a": customer.account_id, "m": mills},
                )

        def day(overview: dict[str, object], days_ago: int) -> dict[str, object]:
            days = overview["days"]
            assert isinstance(days, list)
            return dict(days[-1 - days_ago])

        before = (await op.client.get("/v1/admin/overview")).json()
        await backdated_credit(4000, 5)
        # Day -5 was closed by the first read: its kept total does not move.
        assert day((await op.client.get("/v1/admin/overview")).json(), 5) == day(before, 5)
        recipient = unique_email("ov")
        await confirm_recipient(sessionmaker, customer, recipient)
        placed = await place_as(sessionmaker, customer.account_id, email=recipient, quantity=1000)
        await op.client.post(f"/v1/admin/orders/{placed.order.public_id}/cancel", headers=op.headers)
        after = (await op.client.get("/v1/admin/overview")).json()
        assert day(after, 0)["orders"] == day(before, 0)["orders"] + 1
        assert after["orders_by_status"]["canceled"] == before["orders_by_status"]["canceled"] + 1
        assert after["balances_held"] != before["balances_held"]

    async def test_today_is_the_live_sum_of_its_payments(
        self, make_operator: MakeOperator, make_customer: MakeCustomer, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        op = await make_operator(OperatorRole.SUPPORT)
        await make_customer("2.00")
        overview = (await op.client.get("/v1/admin/overview")).json()
        async with sessionmaker() as session:
            today_credits = (
                await session.execute(
                    sa.text(
                        "SELECT coalesce(sum(amount_mills), 0) FROM payments WHERE kind = 'credit'"
                        " AND created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
                    )
                )
            ).scalar_one()
        assert overview["days"][-1]["credits"] == format_usd(int(today_credits))
        assert overview["history_complete"] is True  # the test database's history is short

    async def test_an_old_history_is_summed_a_bounded_share_per_read(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        make_customer: MakeCustomer,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Days older than those shown are kept oldest first, a chunk per statement, no statement
        started once the read's budget is spent: each read keeps what it summed, and the next goes on."""
        from ordersvc.admin import overview

        customer = await make_customer("1.00")
        monkeypatch.setattr(overview, "BACKFILL_CHUNK_DAYS", 10)
        # 45 days long ago that no overview has kept (a random stretch, so that a rerun finds it new).
        start = 2000 + uuid.uuid4().int % 20000
        last = utc_now().date() - timedelta(days=start)
        first = last - timedelta(days=44)
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.text(
                    "INSERT INTO payments (account_id, kind, amount_mills, description, created_at)"
                    " VALUES (:a, 'credit', 2500, 'long ago', :t)"
                ),
                {"a": customer.account_id, "t": datetime(first.year, first.month, first.day, 12, tzinfo=UTC)},
            )
            await session.execute(
                sa.text("UPDATE accounts SET balance_mills = balance_mills + 2500, payments_count = payments_count + 1"
                        " WHERE id = :a"),
                {"a": customer.account_id},
            )  # fmt: skip

        async def kept_days() -> int:
            async with sessionmaker() as session:
                return int(
                    (
                        await session.execute(
                            sa.text("SELECT count(*) FROM daily_totals_closed WHERE day BETWEEN :f AND :l"),
                            {"f": first, "l": last},
                        )
                    ).scalar_one()
                )

        reads = []
        for _ in range(10):
            async with sessionmaker.begin() as session:
                done = await overview._close_days(session, first, last, budget=0.0)
            reads.append((done, await kept_days()))
            if done:
                break
        # A chunk per read (the budget of 0 s is spent after the first), then done.
        assert reads == [(False, 10), (False, 20), (False, 30), (False, 40), (True, 45)]
        async with sessionmaker() as session:
            kept = (
                await session.execute(
                    sa.text("SELECT amount_mills, count FROM daily_totals WHERE day = :d AND metric = 'payment'"
                            " AND key = 'credit'"),
                    {"d": first},
                )
            ).one()  # fmt: skip
        assert tuple(kept) == (2500, 1)
