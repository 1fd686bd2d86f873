"""Mail to internationalised addresses (RFC 6531/6532), which orders and sign-up accept: a
non-ASCII mailbox name is sent with SMTPUTF8; an internationalised domain alone is sent in its
ASCII (IDNA) form, which every server takes; a server without SMTPUTF8 fails such a message at
once, for good, with the reason (it was retried forever on an "ascii codec" error); ASCII
addresses are sent exactly as before."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.outbox import mailer
from ordersvc.outbox import service as outbox
from tests.support import free_port

MAIL_FROM = "ordersvc <no-reply@example.com>"


@dataclass
class Envelopes:
    """What a loopback server received: envelope and message, per transaction."""

    received: list[tuple[str, list[str], list[str], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        self.received.append((envelope.mail_from, envelope.rcpt_tos, envelope.mail_options, envelope.original_content))
        return "250 OK"

    def to(self, address: str) -> list[tuple[str, list[str], list[str], bytes]]:
        return [r for r in self.received if address in r[1]]


@contextmanager
def smtp_server(*, smtputf8: bool) -> Iterator[tuple[str, Envelopes]]:
    from aiosmtpd.controller import Controller

    envelopes = Envelopes()
    port = free_port()
    controller = Controller(envelopes, hostname="127.0.0.1", port=port, enable_SMTPUTF8=smtputf8)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", envelopes
    finally:
        controller.stop()


async def queued(maker: async_sessionmaker[AsyncSession], to: str) -> int:
    async with maker.begin() as session:
        message = await outbox.enqueue(
            session,
            to_email=to,
            subject="Hello",
            body_text="text",
            body_html="<p>html</p>",
            headers={},
            purpose="account",
        )
    assert message.id is not None
    return message.id


async def stored(maker: async_sessionmaker[AsyncSession], message_id: int) -> tuple[str, int, str | None]:
    async with maker() as session:
        row = (
            await session.execute(
                sa.text("SELECT status, attempts, last_error FROM outbox WHERE id = :i"), {"i": message_id}
            )
        ).one()
    return row.status, row.attempts, row.last_error


async def send_all(maker: async_sessionmaker[AsyncSession], url: str) -> None:
    send = mailer.smtp_sender(url)
    while await mailer.send_due(maker, send, MAIL_FROM, limit=200):
        pass


def tag() -> str:
    return uuid.uuid4().hex[:8]


class TestInternationalAddresses:
    async def test_a_non_ascii_mailbox_is_sent_with_smtputf8(self, sessionmaker) -> None:
        to = f"\u00fcser-{tag()}@ex\u00e4mple.com"
        message_id = await queued(sessionmaker, to)
        with smtp_server(smtputf8=True) as (url, envelopes):
            await send_all(sessionmaker, url)
        ((mail_from, rcpts, options, content),) = envelopes.to(to)
        assert (mail_from, rcpts) == ("no-reply@example.com", [to])
        assert "SMTPUTF8" in options
        assert message_from_bytes(content, policy=policy.SMTPUTF8)["To"] == to  # the header in UTF-8, as sent
        assert (await stored(sessionmaker, message_id))[:2] == ("sent", 1)

    async def test_an_international_domain_alone_goes_in_ascii_without_smtputf8(self, sessionmaker) -> None:
        local = f"user-{tag()}"
        message_id = await queued(sessionmaker, f"{local}@ex\u00e4mple.com")
        with smtp_server(smtputf8=False) as (url, envelopes):
            await send_all(sessionmaker, url)
        ((_, _, options, content),) = envelopes.to(f"{local}@xn--exmple-cua.com")
        assert "SMTPUTF8" not in options
        assert content.isascii()
        assert (await stored(sessionmaker, message_id))[:2] == ("sent", 1)

    async def test_a_server_without_smtputf8_fails_it_for_good_with_the_reason(self, sessionmaker) -> None:
        to = f"\u7528\u6237-{tag()}@example.com"
        message_id = await queued(sessionmaker, to)
        with smtp_server(smtputf8=False) as (url, envelopes):
            await send_all(sessionmaker, url)
            assert envelopes.to(to) == []
        status, attempts, last_error = await stored(sessionmaker, message_id)
        assert (status, attempts) == ("failed", 1)
        assert last_error is not None
        assert last_error.startswith("undeliverable: the mail server does not support SMTPUTF8")

    async def test_ascii_addresses_are_sent_as_before(self, sessionmaker) -> None:
        to = f"plain-{tag()}@example.com"
        await queued(sessionmaker, to)
        with smtp_server(smtputf8=True) as (url, envelopes):
            await send_all(sessionmaker, url)
        ((_, rcpts, options, content),) = envelopes.to(to)
        assert rcpts == [to]
        assert "SMTPUTF8" not in options
        assert content.isascii()


@pytest.mark.parametrize(
    ("address", "sent_as"),
    [
        ("a@example.com", "a@example.com"),
        ("a@ex\u00e4mple.com", "a@xn--exmple-cua.com"),
        ("\u00fc@ex\u00e4mple.com", "\u00fc@ex\u00e4mple.com"),  # the mailbox needs SMTPUTF8 anyway
        ("not an address \u00fc", "not an address \u00fc"),  # left for the server to refuse
    ],
)
def test_deliverable_address(address: str, sent_as: str) -> None:
    assert mailer.deliverable_address(address) == sent_as
