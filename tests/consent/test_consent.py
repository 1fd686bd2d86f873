"""Recipient consent: the confirmation message, the pages, opt-out and suppression, expiry,
and the outbox delivered over real SMTP (aiosmtpd on loopback)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.config import get_settings
from ordersvc.consent import service as consent
from ordersvc.outbox import mailer
from ordersvc.outbox.models import OutboxMessage
from ordersvc.timestamps import utc_now
from tests.conftest import MakeCustomer
from tests.legacy.helpers import call, snapshot
from tests.orders.test_endpoints import auth
from tests.support import Customer, Inbox, free_port, loopback_smtp, run_cli


def recipient() -> str:
    return f"friend-{uuid.uuid4().hex[:10]}@example.org"


async def order(client: httpx.AsyncClient, customer: Customer, email: str, quantity: int = 1000) -> httpx.Response:
    return await client.post("/v1/orders", json={"email": email, "quantity": quantity}, headers=auth(customer))


async def messages_to(maker: async_sessionmaker[AsyncSession], email: str) -> list[OutboxMessage]:
    await mailer.render_queued(maker, get_settings())  # as the mailer's round writes them
    async with maker() as session:
        stmt = sa.select(OutboxMessage).where(OutboxMessage.to_email == email).order_by(OutboxMessage.id)
        return list((await session.execute(stmt)).scalars().all())


def link(message: OutboxMessage, action: str) -> str:
    match = re.search(rf"http://[^\s]+/consent/{action}/[A-Za-z0-9_.-]+", message.body_text)
    assert match, message.body_text
    return match.group(0).split("8000", 1)[1]  # the path, for the in-process client


async def order_statuses(client: httpx.AsyncClient, customer: Customer) -> list[str]:
    return [o["status"] for o in (await client.get("/v1/orders", headers=auth(customer))).json()["data"]]


class TestConfirmationMessage:
    async def test_first_order_asks_the_recipient_once(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        customer, to = await make_customer(balance="10"), recipient()
        first = await order(client, customer, to, 2500)
        assert first.json()["status"] == "awaiting_confirmation"
        await order(client, customer, to.upper().replace("EXAMPLE.ORG", "example.org"), 500)
        (message,) = await messages_to(sessionmaker, to)
        assert customer.email in message.subject + message.body_text
        assert "1 order for 2500 messages" in message.body_text
        assert message.headers["List-Unsubscribe"] == f"<http://127.0.0.1:8000{link(message, 'optout')}>"
        assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        for action in ("confirm", "decline", "optout"):
            assert f"/consent/{action}/" in message.body_html

    async def test_one_message_per_address_per_day_across_accounts(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        to = recipient()
        first, second = await make_customer(balance="5"), await make_customer(balance="5")
        await order(client, first, to)
        await order(client, second, to)
        assert len(await messages_to(sessionmaker, to)) == 1
        assert await consent.mail_waiting_requests(sessionmaker) >= 0
        assert len(await messages_to(sessionmaker, to)) == 1  # the window is still closed
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.text("UPDATE recipient_mailboxes SET last_mailed_at = last_mailed_at - interval '25 hours' "
                        "WHERE email = :e"), {"e": to},
            )  # fmt: skip
        await consent.mail_waiting_requests(sessionmaker)
        messages = await messages_to(sessionmaker, to)
        assert len(messages) == 2
        assert second.email in messages[1].body_text


class TestPages:
    async def test_get_shows_a_button_and_changes_nothing(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        customer, to = await make_customer(balance="5"), recipient()
        await order(client, customer, to)
        (message,) = await messages_to(sessionmaker, to)
        for action in ("confirm", "decline", "optout"):
            page = await client.get(link(message, action))
            assert page.status_code == 200
            assert '<form method="post">' in page.text
            assert customer.email in page.text
        assert await order_statuses(client, customer) == ["awaiting_confirmation"]

    async def test_confirm_releases_waiting_orders_and_later_ones_skip_the_wait(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        customer, to = await make_customer(balance="5"), recipient()
        placed = (await order(client, customer, to)).json()
        (message,) = await messages_to(sessionmaker, to)
        done = await client.post(link(message, "confirm"))
        assert (done.status_code, "Thank you" in done.text) == (200, True)
        again = await client.post(link(message, "confirm"))
        assert again.status_code == 200
        assert await order_statuses(client, customer) == ["pending"]
        assert (await order(client, customer, to)).json()["status"] == "pending"
        assert len(await messages_to(sessionmaker, to)) == 1
        events = (await client.get(f"/v1/orders/{placed['id']}/events", headers=auth(customer))).json()["data"]
        assert [(e["to_status"], e["reason"]) for e in events] == [
            ("awaiting_confirmation", "placed"),
            ("pending", "recipient confirmed"),
        ]

    async def test_decline_cancels_waiting_orders_with_full_refunds(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        customer, to = await make_customer(balance="5"), recipient()
        await order(client, customer, to, 1234)
        await order(client, customer, to, 500)
        (message,) = await messages_to(sessionmaker, to)
        assert (await client.post(link(message, "decline"))).status_code == 200
        assert await order_statuses(client, customer) == ["canceled", "canceled"]
        assert await snapshot(sessionmaker, customer) == ("5.00", 5, 2)
        # A closed request cannot be confirmed any more.
        assert (await client.post(link(message, "confirm"))).status_code == 409

    async def test_opt_out_suppresses_the_address_for_everyone(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        to = recipient()
        first, second = await make_customer(balance="5"), await make_customer(balance="5")
        await order(client, first, to)
        (message,) = await messages_to(sessionmaker, to)
        await client.post(link(message, "confirm"))
        await order(client, second, to)
        # RFC 8058 one-click, as a mail client sends it.
        one_click = await client.post(
            link(message, "optout"),
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert one_click.status_code == 200
        assert await order_statuses(client, first) == ["canceled"]
        assert await order_statuses(client, second) == ["canceled"]
        assert (await snapshot(sessionmaker, first))[0] == "5.00"
        refused = await order(client, first, to.upper())
        assert (refused.status_code, refused.json()["code"]) == (409, "recipient_opted_out")
        legacy = await call(client, second.api_key, {"action": "order", "email": to, "quantity": 1000})
        assert legacy.content == b'{"error":"Recipient has opted out."}'
        assert await snapshot(sessionmaker, second) == ("5.00", 3, 1)

    @pytest.mark.parametrize("tamper", [lambda t: t[:-2] + "AA", lambda t: "x" + t, lambda t: "nonsense"])
    async def test_tampered_link_is_refused(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, tamper
    ) -> None:
        customer, to = await make_customer(balance="5"), recipient()
        await order(client, customer, to)
        (message,) = await messages_to(sessionmaker, to)
        path = link(message, "confirm")
        prefix, token = path.rsplit("/", 1)
        for method in ("GET", "POST"):
            response = await client.request(method, f"{prefix}/{tamper(token)}")
            assert response.status_code == 400
        assert (await client.post(f"/consent/optout/{token}")).status_code == 400  # a confirm token
        assert await order_statuses(client, customer) == ["awaiting_confirmation"]


class TestExpiry:
    async def test_unanswered_request_expires_and_refunds(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        customer, to = await make_customer(balance="5"), recipient()
        await order(client, customer, to, 2000)
        (_message,) = await messages_to(sessionmaker, to)
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.text("UPDATE recipient_consents SET expires_at = now() - interval '1 second' WHERE email = :e"),
                {"e": to},
            )
        assert await consent.expire_requests(sessionmaker) >= 1
        assert await order_statuses(client, customer) == ["canceled"]
        assert await snapshot(sessionmaker, customer) == ("5.00", 3, 1)

    async def test_expired_link_is_410(self, client: httpx.AsyncClient, monkeypatch) -> None:
        from ordersvc.config import get_settings
        from ordersvc.consent import tokens
        from ordersvc.keyring import keyring

        token = tokens.sign(
            keyring(get_settings()),
            tokens.ConsentToken(1, tokens.ConsentAction.CONFIRM, int((utc_now() - timedelta(seconds=1)).timestamp())),
        )
        assert (await client.get(f"/consent/confirm/{token}")).status_code == 410


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[str, Inbox]]:
    with loopback_smtp() as server:
        yield server


class TestDelivery:
    async def test_outbox_is_delivered_over_smtp_once(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, smtp
    ) -> None:
        url, inbox = smtp
        customer, to = await make_customer(balance="5"), recipient()
        await order(client, customer, to)
        send = mailer.smtp_sender(url)
        while await mailer.send_due(sessionmaker, send, "ordersvc <no-reply@example.com>"):
            pass
        delivered = [m for m in inbox.messages if m["To"] == to]
        assert len(delivered) == 1
        assert delivered[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert delivered[0]["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/consent/optout/")
        (stored,) = await messages_to(sessionmaker, to)
        assert (stored.status, stored.attempts, delivered[0]["Message-ID"]) == ("sent", 1, stored.message_id)
        assert await mailer.send_due(sessionmaker, send, "x@example.com") == 0 or stored.to_email != to

    async def test_failed_sends_are_retried_with_backoff(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, smtp
    ) -> None:
        url, inbox = smtp
        customer, to = await make_customer(balance="5"), recipient()
        await order(client, customer, to)
        dead = mailer.smtp_sender(f"smtp://127.0.0.1:{free_port()}")  # nothing listens there
        await mailer.send_due(sessionmaker, dead, "x@example.com")
        (stored,) = await messages_to(sessionmaker, to)
        assert (stored.status, stored.attempts) == ("pending", 1)
        assert stored.next_attempt_at > utc_now() + timedelta(seconds=20)
        assert stored.last_error
        async with sessionmaker.begin() as session:
            await session.execute(sa.text("UPDATE outbox SET next_attempt_at = now() WHERE id = :i"), {"i": stored.id})
        await mailer.send_due(sessionmaker, mailer.smtp_sender(url), "x@example.com")
        assert [m["To"] for m in inbox.messages].count(to) == 1

    async def test_a_sender_that_dies_mid_send_loses_nothing(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, smtp
    ) -> None:
        url, inbox = smtp
        customer, to = await make_customer(balance="5"), recipient()
        await order(client, customer, to)

        async def dies(email) -> None:  # type: ignore[no-untyped-def]
            raise SystemExit("killed")  # not an SMTP error: the process is gone

        with pytest.raises(SystemExit):
            await mailer.send_due(sessionmaker, dies, "x@example.com")
        (stored,) = await messages_to(sessionmaker, to)
        assert stored.status == "sending"
        # Nobody resends it while its lease runs...
        await mailer.send_due(sessionmaker, mailer.smtp_sender(url), "x@example.com")
        assert to not in [m["To"] for m in inbox.messages]
        # ...and once the lease is over, the next sender delivers it, with its Message-ID.
        async with sessionmaker.begin() as session:
            await session.execute(
                sa.text("UPDATE outbox SET claimed_until = now() - interval '1 second' WHERE id = :i"), {"i": stored.id}
            )
        await mailer.send_due(sessionmaker, mailer.smtp_sender(url), "x@example.com")
        delivered = [m for m in inbox.messages if m["To"] == to]
        assert [m["Message-ID"] for m in delivered] == [stored.message_id]


class TestOperatorCommands:
    def test_suppression_and_outbox_commands(self, database_url: str) -> None:
        to = recipient()
        assert run_cli("suppression", "add", to).stdout.strip() == f"{to} suppressed"
        assert to in run_cli("suppression", "list").stdout
        assert run_cli("suppression", "remove", to).returncode == 0
        removed_again = run_cli("suppression", "remove", to)
        assert removed_again.returncode == 3  # not found
        assert "not on the suppression list" in removed_again.stderr
        assert run_cli("outbox", "list", "--limit", "1").returncode == 0
        assert run_cli("mailer", "--once").returncode == 0


class TestMailboxKeys:
    async def test_case_folding_matches_for_every_script(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        """Python and PostgreSQL lower-case some letters differently (a final sigma): the key
        is computed by PostgreSQL on both sides, so confirm and opt-out reach these orders."""
        customer = await make_customer(balance="5")
        to = f"ΟΔΥΣ{uuid.uuid4().hex[:6]}@example.gr"
        await order(client, customer, to)
        await mailer.render_queued(sessionmaker, get_settings())
        async with sessionmaker() as session:
            stmt = sa.select(OutboxMessage).where(sa.func.lower(OutboxMessage.to_email) == sa.func.lower(to))
            (message,) = (await session.execute(stmt)).scalars().all()
        assert "1 order for 1000 messages" in message.body_text
        assert (await client.post(link(message, "confirm"))).status_code == 200
        assert await order_statuses(client, customer) == ["pending"]
        assert (await client.post(link(message, "optout"))).status_code == 200
        assert await order_statuses(client, customer) == ["canceled"]
        assert (await order(client, customer, to.lower())).json()["code"] == "recipient_opted_out"

    async def test_mail_queued_before_an_opt_out_is_not_sent(
        self, client: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker, smtp
    ) -> None:
        url, inbox = smtp
        customer, to = await make_customer(balance="5"), recipient()
        await order(client, customer, to)
        async with sessionmaker.begin() as session:
            await consent.suppress(session, email=to)
        await mailer.send_due(sessionmaker, mailer.smtp_sender(url), "x@example.com")
        assert to not in [m["To"] for m in inbox.messages]
        (stored,) = await messages_to(sessionmaker, to)
        assert (stored.status, stored.last_error) == ("failed", "recipient opted out")
