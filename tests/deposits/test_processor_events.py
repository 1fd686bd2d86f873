"""Every signed processor event is kept with its outcome (for disputes); unsigned ones are not."""

from __future__ import annotations

import json

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import MakeCustomer
from tests.deposits.conftest import AddressFor, chain_body, chain_headers, tx_hash


async def _events(maker: async_sessionmaker[AsyncSession], external_id: str) -> list[tuple[str, int | None]]:
    async with maker() as session:
        rows = await session.execute(
            sa.text("SELECT outcome, deposit_id FROM processor_events WHERE external_id = :x ORDER BY id"),
            {"x": external_id},
        )
        return [(r[0], r[1]) for r in rows]


async def test_credited_duplicate_unmatched_and_refused_are_kept(
    hooks: httpx.AsyncClient,
    make_customer: MakeCustomer,
    address_for: AddressFor,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    customer = await make_customer()
    body = chain_body(await address_for(customer.account_id))
    external_id = json.loads(body)["tx_hash"]
    for expected in ("credited", "duplicate"):
        response = await hooks.post("/webhooks/chain", content=body, headers=chain_headers(body))
        assert response.json() == {"status": expected}
    async with sessionmaker() as session:
        external_id = (
            await session.execute(sa.text("SELECT external_id FROM deposits WHERE tx_hash = :t"), {"t": external_id})
        ).scalar_one()
    events = await _events(sessionmaker, external_id)
    assert [e[0] for e in events] == ["credited", "duplicate"]
    assert events[0][1] is not None

    stranger = chain_body("Tnobody" + tx_hash()[:20])
    assert (await hooks.post("/webhooks/chain", content=stranger, headers=chain_headers(stranger))).json() == {
        "status": "unmatched"
    }

    async with sessionmaker() as session:
        before = (await session.execute(sa.text("SELECT count(*) FROM processor_events"))).scalar_one()
    unsigned = await hooks.post("/webhooks/chain", content=body, headers={"ordersvc-signature": "t=1,v1=00"})
    assert unsigned.status_code == 401
    refused = b'{"not": "a deposit"}'
    assert (await hooks.post("/webhooks/chain", content=refused, headers=chain_headers(refused))).status_code == 422
    async with sessionmaker() as session:
        rows = (
            await session.execute(sa.text("SELECT outcome, detail FROM processor_events ORDER BY id DESC LIMIT 1"))
        ).one()
        after = (await session.execute(sa.text("SELECT count(*) FROM processor_events"))).scalar_one()
    assert after == before + 1  # the refused one; the unsigned one is not kept
    assert rows[0] == "refused"
    assert rows[1]
