"""Consent links are signed with a secret of this installation only: not with one written in the
source, and a rotation keeps the links already sent working."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import MakeCustomer
from tests.consent.test_consent import link, messages_to, order, order_statuses, recipient
from tests.ops.conftest import app_client
from tests.secrets_support import OLD_DEFAULT_SECRET, default_app, new_secret, old_consent_token


async def waiting_consent(
    client: httpx.AsyncClient, make_customer: MakeCustomer, maker: async_sessionmaker[AsyncSession]
) -> tuple[object, str, int]:
    """A customer with an order waiting for a stranger's confirmation, and that consent's id."""
    customer, to = await make_customer(balance="5"), recipient()
    assert (await order(client, customer, to)).json()["status"] == "awaiting_confirmation"
    async with maker() as session:
        consent_id = (
            await session.execute(sa.text("SELECT id FROM recipient_consents WHERE email = :e"), {"e": to})
        ).scalar_one()
    return customer, to, consent_id


class TestNoPublicSecret:
    async def test_a_link_forged_with_the_old_default_secret_confirms_nothing(
        self,
        client: httpx.AsyncClient,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # The attack of issue 14: a customer signs a confirm token for its own order's consent with
        # the secret every default installation used, and the order to a stranger goes `pending`.
        customer, _, consent_id = await waiting_consent(client, make_customer, sessionmaker)
        forged = old_consent_token(OLD_DEFAULT_SECRET, consent_id, "confirm", int(time.time()) + 3600)
        async with default_app(tmp_path, monkeypatch) as (_, fresh):
            for method in ("GET", "POST"):
                answer = await fresh.request(method, f"/consent/confirm/{forged}")
                assert answer.status_code == 400, answer.text
        assert await order_statuses(client, customer) == ["awaiting_confirmation"]  # type: ignore[arg-type]

    async def test_a_fresh_installation_signs_with_its_generated_secret(
        self,
        client: httpx.AsyncClient,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        from ordersvc.consent import tokens
        from ordersvc.keyring import Keyring

        _, to, consent_id = await waiting_consent(client, make_customer, sessionmaker)
        async with default_app(tmp_path, monkeypatch) as (app, fresh):
            from ordersvc.consent import service as consent

            async with app.state.sessionmaker.begin() as session:
                await session.execute(
                    sa.text("UPDATE recipient_consents SET mailed_at = NULL WHERE id = :id"), {"id": consent_id}
                )
                await session.execute(sa.text("DELETE FROM recipient_mailboxes WHERE email = :e"), {"e": to})
                assert await consent.request_confirmation(session, consent_id=consent_id, settings=app.state.settings)
            from ordersvc.outbox import mailer

            await mailer.render_queued(app.state.sessionmaker, app.state.settings)  # its mailer writes it
            token = link((await messages_to(sessionmaker, to))[-1], "confirm").rsplit("/", 1)[1]
            assert (await fresh.get(f"/consent/confirm/{token}")).status_code == 200
        generated = (tmp_path / "secret_key").read_text().strip()
        assert tokens.verify(Keyring((generated.encode(),)), token, now=int(time.time())).consent_id == consent_id
        with pytest.raises(tokens.InvalidToken):
            tokens.verify(Keyring((OLD_DEFAULT_SECRET.encode(),)), token, now=int(time.time()))


class TestRotation:
    async def test_links_signed_before_a_rotation_still_work_and_new_ones_use_the_new_secret(
        self,
        client: httpx.AsyncClient,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        from ordersvc.consent import tokens
        from ordersvc.keyring import Keyring

        old, new = new_secret(), new_secret()
        customer, _, consent_id = await waiting_consent(client, make_customer, sessionmaker)
        expires = int(time.time()) + 3600
        before = tokens.sign(
            Keyring((old.encode(),)), tokens.ConsentToken(consent_id, tokens.ConsentAction.CONFIRM, expires)
        )
        async with app_client(secret_key=new) as (_, without_fallback):
            assert (await without_fallback.post(f"/consent/confirm/{before}")).status_code == 400
        async with app_client(secret_key=new, secret_key_fallbacks=[old]) as (_, rotated):
            assert (await rotated.post(f"/consent/confirm/{before}")).status_code == 200
            after = tokens.sign(
                Keyring((new.encode(), old.encode())),
                tokens.ConsentToken(consent_id, tokens.ConsentAction.DECLINE, expires),
            )
        assert await order_statuses(client, customer) == ["pending"]  # type: ignore[arg-type]
        # New links are signed with the current secret only: the old one alone does not verify them.
        with pytest.raises(tokens.InvalidToken):
            tokens.verify(Keyring((old.encode(),)), after, now=int(time.time()))
        assert tokens.verify(Keyring((new.encode(),)), after, now=int(time.time())).consent_id == consent_id

    async def test_links_sent_before_the_upgrade_keep_working_under_their_secret(
        self,
        client: httpx.AsyncClient,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        # Up to 10edb0a links were signed with the configured secret itself (no derived key): an
        # installation that had set ORDERSVC_SECRET_KEY keeps its outstanding links.
        configured = new_secret()
        customer, _, consent_id = await waiting_consent(client, make_customer, sessionmaker)
        sent = old_consent_token(configured, consent_id, "confirm", int(time.time()) + 3600)
        async with app_client(secret_key=configured) as (_, upgraded):
            assert (await upgraded.post(f"/consent/confirm/{sent}")).status_code == 200
        assert await order_statuses(client, customer) == ["pending"]  # type: ignore[arg-type]

    async def test_a_generated_secret_accepts_no_signature_of_the_older_scheme(
        self,
        client: httpx.AsyncClient,
        make_customer: MakeCustomer,
        sessionmaker: async_sessionmaker[AsyncSession],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """The service never signed with a secret it generated: a file it made holds no links of
        the older scheme, so a leaked copy of that file is not also a key of that scheme."""
        customer, _, consent_id = await waiting_consent(client, make_customer, sessionmaker)
        async with default_app(tmp_path, monkeypatch) as (_, fresh):
            generated = (tmp_path / "secret_key").read_text().strip()
            forged = old_consent_token(generated, consent_id, "confirm", int(time.time()) + 3600)
            assert (await fresh.post(f"/consent/confirm/{forged}")).status_code == 400
        assert await order_statuses(client, customer) == ["awaiting_confirmation"]  # type: ignore[arg-type]


class TestTokenForm:
    def test_a_consent_signature_is_no_csrf_token_and_the_other_way_round(self) -> None:
        from ordersvc.keyring import Keyring, Purpose

        keys = Keyring((new_secret().encode(),))
        message = b"csrf:the same bytes"
        assert keys.sign(Purpose.CONSENT_LINK, message) != keys.sign(Purpose.CSRF, message)
        assert not keys.verify(Purpose.CSRF, message, keys.sign(Purpose.CONSENT_LINK, message))
        assert not keys.verify(Purpose.CONSENT_LINK, message, keys.sign(Purpose.CSRF, message))

    @pytest.mark.parametrize("spoil", ["=", "%", "ü", " ", "A" * 300])
    def test_a_signature_spelled_differently_is_refused(self, spoil: str) -> None:
        from ordersvc.consent import tokens
        from ordersvc.keyring import Keyring

        keys = Keyring((new_secret().encode(),))
        good = tokens.sign(keys, tokens.ConsentToken(7, tokens.ConsentAction.CONFIRM, int(time.time()) + 60))
        assert tokens.verify(keys, good, now=int(time.time())).consent_id == 7
        with pytest.raises(tokens.InvalidToken):
            tokens.verify(keys, good + spoil, now=int(time.time()))
