"""One on-chain transfer is one deposit however its hash is spelt: case, `0x`, processor."""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ordersvc.audit.service import Actor
from ordersvc.deposits import addresses
from ordersvc.deposits import service as deposits
from ordersvc.deposits.hashes import InvalidTxHash, normalise_address, normalise_tx_hash
from ordersvc.deposits.models import Network
from tests.conftest import MakeCustomer
from tests.deposits.conftest import AddressFor, chain_body, chain_headers, nowpayments_headers
from tests.legacy.helpers import snapshot


def spellings(digits: str) -> list[str]:
    """Three ways explorers and tools write one hash: lower case, upper case with 0x, mixed with 0X."""
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(digits))
    return [digits.lower(), "0x" + digits.upper(), "0X" + mixed]


async def stored_hashes(maker: async_sessionmaker[AsyncSession], address: str) -> list[str]:
    async with maker() as session:
        rows = await session.execute(
            sa.text("SELECT tx_hash FROM deposits WHERE address = :a ORDER BY id"), {"a": address}
        )
        return [row[0] for row in rows]


def ipn(**fields: Any) -> dict[str, Any]:
    """A finished NOWPayments IPN of 50 USD on USDT-TRC20 with a payment id of its own."""
    return {
        "payment_id": int(uuid.uuid4().int % 10**10),
        "payment_status": "finished",
        "price_amount": 50,
        "price_currency": "usd",
        "pay_amount": 50,
        "actually_paid": 50,
        "pay_currency": "usdttrc20",
        "order_id": None,
        **fields,
    }


async def post_ipn(hooks: httpx.AsyncClient, payload: dict[str, Any]) -> httpx.Response:
    body = json.dumps(payload).encode()
    return await hooks.post("/webhooks/nowpayments", content=body, headers=nowpayments_headers(payload))


class TestCanonicalForm:
    @pytest.mark.parametrize("network", ["BTC", "LTC", "USDT-TRC20"])
    def test_plain_hex_networks_are_lower_case_without_0x(self, network: str) -> None:
        digits = secrets.token_hex(32)
        assert {normalise_tx_hash(network, s) for s in spellings(digits)} == {digits}

    def test_ethereum_is_lower_case_with_0x(self) -> None:
        digits = secrets.token_hex(32)
        assert {normalise_tx_hash("USDT-ERC20", s) for s in [*spellings(digits), digits.upper()]} == {f"0x{digits}"}

    @pytest.mark.parametrize(
        "bad",
        ["", "0x", "deadbeef01", "0xdeadbeef01", "g" * 64, "ab" * 33, " ", "0x" + "ab" * 31 + "zz", "0x0x" + "a" * 62],
    )
    def test_what_no_network_writes_is_refused(self, bad: str) -> None:
        with pytest.raises(InvalidTxHash):
            normalise_tx_hash("BTC", bad)

    def test_a_network_we_do_not_take_keeps_its_hash(self) -> None:
        assert normalise_tx_hash("usdtbsc", "0xABC") == "0xABC"
        assert normalise_tx_hash("BTC", None) is None


class TestChainWatcher:
    async def test_three_spellings_of_one_hash_credit_once(
        self, hooks: httpx.AsyncClient, make_customer: MakeCustomer, address_for: AddressFor, sessionmaker
    ) -> None:
        customer = await make_customer()
        address, digits = await address_for(customer.account_id), "deadbeef01" + secrets.token_hex(27)
        statuses = []
        for spelling in spellings(digits):
            body = chain_body(address, "10", tx=spelling)
            response = await hooks.post("/webhooks/chain", content=body, headers=chain_headers(body))
            statuses.append(response.json()["status"])
        assert statuses == ["credited", "duplicate", "duplicate"]
        assert await snapshot(sessionmaker, customer) == ("10.00", 1, 0)
        assert await stored_hashes(sessionmaker, address) == [digits]

    async def test_a_hash_that_is_not_hex_is_422_and_stores_nothing(
        self, hooks: httpx.AsyncClient, make_customer: MakeCustomer, address_for: AddressFor, sessionmaker
    ) -> None:
        customer = await make_customer()
        address = await address_for(customer.account_id)
        for bad in ["not-a-hash", "0xdeadbeef01", "z" * 64]:
            body = chain_body(address, "10", tx=bad)
            response = await hooks.post("/webhooks/chain", content=body, headers=chain_headers(body))
            assert (response.status_code, response.json()["code"]) == (422, "invalid_tx_hash")
        assert await stored_hashes(sessionmaker, address) == []
        assert await snapshot(sessionmaker, customer) == ("0.00", 0, 0)


class TestNowPayments:
    async def test_payin_hash_in_another_case_credits_once(
        self, hooks: httpx.AsyncClient, make_customer: MakeCustomer, address_for: AddressFor, sessionmaker
    ) -> None:
        customer = await make_customer()
        address, digits = await address_for(customer.account_id), secrets.token_hex(32)
        first = await post_ipn(hooks, ipn(pay_address=address, payin_hash=digits.upper()))
        # Another payment id reporting the same transfer, its hash in lower case with 0x.
        second = await post_ipn(hooks, ipn(pay_address=address, payin_hash=f"0x{digits}"))
        assert [first.json(), second.json()] == [{"status": "credited"}, {"status": "duplicate"}]
        assert await snapshot(sessionmaker, customer) == ("50.00", 1, 0)
        assert await stored_hashes(sessionmaker, address) == [digits]

    async def test_chain_watcher_then_nowpayments_in_upper_case_credits_once(
        self, hooks: httpx.AsyncClient, make_customer: MakeCustomer, address_for: AddressFor, sessionmaker
    ) -> None:
        customer = await make_customer()
        address, digits = await address_for(customer.account_id), secrets.token_hex(32)
        body = chain_body(address, "50", tx=digits)
        assert (await hooks.post("/webhooks/chain", content=body, headers=chain_headers(body))).json() == {
            "status": "credited"
        }
        assert (await post_ipn(hooks, ipn(pay_address=address, payin_hash=digits.upper()))).json() == {
            "status": "duplicate"
        }
        assert await snapshot(sessionmaker, customer) == ("50.00", 1, 0)


class TestOperatorAssign:
    async def test_an_unmatched_copy_of_a_credited_transfer_is_not_credited_again(
        self, make_customer: MakeCustomer, address_for: AddressFor, sessionmaker
    ) -> None:
        """A row stored before the hashes were normalised (written here as it was then) and
        left by migration 0012 as a collision: `deposits assign` refuses to credit it twice."""
        customer = await make_customer()
        address, digits = await address_for(customer.account_id), secrets.token_hex(32)
        async with sessionmaker.begin() as session:
            credited = await deposits.record_deposit(
                session,
                deposits.DepositEvent(processor="chain", external_id=f"USDT-TRC20:{digits}:{address}",
                                      amount_mills=5_000, payload={}, network="USDT-TRC20", address=address,
                                      tx_hash=digits),
            )  # fmt: skip
            old = await session.execute(
                sa.text("INSERT INTO deposits (processor, external_id, network, address, tx_hash, amount_mills, "
                        "status, payload) VALUES ('nowpayments', :e, 'USDT-TRC20', :a, :h, 5000, 'unmatched', '{}') "
                        "RETURNING id"),
                {"e": uuid.uuid4().hex, "a": address.upper(), "h": digits.upper()},
            )  # fmt: skip
            old_id = old.scalar_one()
        assert credited.status == "credited"
        async with sessionmaker.begin() as session:
            with pytest.raises(
                deposits.TransferAlreadyCredited, match=f"already credited as deposit {credited.deposit_id}"
            ):
                await deposits.assign_unmatched(
                    session, deposit_id=old_id, email=customer.email, actor=Actor.local_operator()
                )
        assert await snapshot(sessionmaker, customer) == ("5.00", 1, 0)

    async def test_the_copy_is_refused_whichever_spelling_was_credited(
        self, make_customer: MakeCustomer, address_for: AddressFor, sessionmaker
    ) -> None:
        customer = await make_customer()
        address, digits = await address_for(customer.account_id), secrets.token_hex(32)

        async def old_row(tx: str, at: str) -> int:
            async with sessionmaker.begin() as session:
                inserted = await session.execute(
                    sa.text("INSERT INTO deposits (processor, external_id, network, address, tx_hash, amount_mills, "
                            "status, payload) VALUES ('chain', :e, 'USDT-TRC20', :a, :h, 5000, 'unmatched', '{}') "
                            "RETURNING id"),
                    {"e": uuid.uuid4().hex, "a": at, "h": tx},
                )  # fmt: skip
                return int(inserted.scalar_one())

        first, copy = await old_row("0X" + digits.upper(), address), await old_row(digits, address.lower())
        async with sessionmaker.begin() as session:
            await deposits.assign_unmatched(
                session, deposit_id=first, email=customer.email, actor=Actor.local_operator()
            )
        async with sessionmaker.begin() as session:
            with pytest.raises(deposits.TransferAlreadyCredited):
                await deposits.assign_unmatched(
                    session, deposit_id=copy, email=customer.email, actor=Actor.local_operator()
                )
        assert await snapshot(sessionmaker, customer) == ("5.00", 1, 0)


class TestAddressSpellings:
    """The reviewer's attack: one Ethereum address imported in two spellings went to two accounts,
    and one transfer reported once per spelling credited both."""

    def test_case_insensitive_addresses_have_one_spelling_and_base58_keeps_its_case(self) -> None:
        eip55 = "0x52908400098527886E0F7030069857D2E4169EE7"
        assert normalise_address("USDT-ERC20", eip55) == eip55.lower()
        assert normalise_address("USDT-ERC20", "0X" + eip55[2:].lower()) == eip55.lower()
        assert normalise_address("BTC", "BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ") == (
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
        )
        assert normalise_address("LTC", "LTC1QABC123DEF") == "ltc1qabc123def"
        for network, base58 in [
            ("BTC", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"),
            ("USDT-TRC20", "TLa2f6VPqDgRE67v1736s7bJ8Ray5wYjU7"),
        ]:
            assert normalise_address(network, base58) == base58
        assert normalise_address("USDT-ERC20", None) is None

    async def test_one_address_imported_in_two_spellings_is_one_pool_entry(self, sessionmaker) -> None:
        digits = secrets.token_hex(20)
        async with sessionmaker.begin() as session:
            added = await addresses.import_addresses(
                session, network=Network.USDT_ERC20, addresses=[f"0x{digits.upper()}", f"0x{digits}"]
            )
        assert added == 1
        async with sessionmaker() as session:
            stored = await session.execute(
                sa.text("SELECT address FROM deposit_addresses WHERE lower(address) = :a"), {"a": f"0x{digits}"}
            )
            assert [row[0] for row in stored] == [f"0x{digits}"]

    async def test_a_transfer_reported_with_either_spelling_credits_its_owner_once(
        self, hooks: httpx.AsyncClient, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        customer = await make_customer()
        digits = secrets.token_hex(20)
        async with sessionmaker.begin() as session:
            await addresses.import_addresses(session, network=Network.USDT_ERC20, addresses=[f"0x{digits}"])
            await session.execute(
                sa.text("UPDATE deposit_addresses SET account_id = :acc, assigned_at = now() WHERE address = :a"),
                {"acc": customer.account_id, "a": f"0x{digits}"},
            )
        tx = "0x" + secrets.token_hex(32)
        statuses = []
        for spelling in [f"0x{digits.upper()}", f"0x{digits}", "0X" + digits]:
            body = json.dumps(
                {"network": "USDT-ERC20", "address": spelling, "tx_hash": tx, "amount_usd": "10", "confirmations": 50}
            ).encode()
            response = await hooks.post("/webhooks/chain", content=body, headers=chain_headers(body))
            statuses.append(response.json()["status"])
        assert statuses == ["credited", "duplicate", "duplicate"]
        assert await snapshot(sessionmaker, customer) == ("10.00", 1, 0)
