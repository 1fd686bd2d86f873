"""BTCPay Server: signed `InvoiceSettled` webhooks, the invoice read back from a Greenfield API
(a stand-in server on loopback serving the documented shapes), credited once per invoice."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Header, HTTPException

from ordersvc.config import Settings
from ordersvc.main import create_app
from tests.conftest import MakeCustomer
from tests.deposits.conftest import BTCPAY_SECRET, AddressFor, tx_hash
from tests.legacy.helpers import snapshot
from tests.support import free_port

API_KEY = "greenfield-api-key"


class FakeGreenfield:
    """Invoices as BTCPay's Greenfield API returns them; counts the calls it gets."""

    def __init__(self) -> None:
        self.invoices: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        self.calls = 0
        self.down = False
        self.app = FastAPI()

        @self.app.get("/api/v1/stores/{store_id}/invoices/{invoice_id}")
        def invoice(store_id: str, invoice_id: str, authorization: str = Header()) -> dict[str, Any]:
            return self._get(invoice_id, authorization)[0]

        @self.app.get("/api/v1/stores/{store_id}/invoices/{invoice_id}/payment-methods")
        def methods(store_id: str, invoice_id: str, authorization: str = Header()) -> list[dict[str, Any]]:
            return self._get(invoice_id, authorization)[1]

    def _get(self, invoice_id: str, authorization: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        self.calls += 1
        if self.down:
            raise HTTPException(502)
        if authorization != f"token {API_KEY}" or invoice_id not in self.invoices:
            raise HTTPException(404)
        return self.invoices[invoice_id]

    def settle(self, *, paid_btc: str, rate: str, metadata: dict[str, Any], address: str = "bc1qdest") -> str:
        invoice_id = uuid.uuid4().hex[:22]
        self.invoices[invoice_id] = (
            {"id": invoice_id, "storeId": "store1", "amount": "100.00", "currency": "USD", "status": "Settled",
             "additionalStatus": "None", "metadata": metadata},
            [{"paymentMethodId": "BTC-CHAIN", "currency": "BTC", "destination": address, "rate": rate,
              "paymentMethodPaid": paid_btc, "totalPaid": paid_btc,
              "payments": [{"id": f"{tx_hash()}-0", "receivedDate": 1732443600, "value": paid_btc,
                            "fee": "0.0", "status": "Settled", "destination": address}]}],
        )  # fmt: skip
        return invoice_id


@pytest.fixture(scope="module")
def greenfield() -> Iterator[FakeGreenfield]:
    fake = FakeGreenfield()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(fake.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    fake.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    yield fake
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
async def btcpay_app(database_url: str, greenfield: FakeGreenfield) -> AsyncIterator[FastAPI]:
    app = create_app(
        Settings(btcpay_webhook_secret=BTCPAY_SECRET, btcpay_url=greenfield.url, btcpay_api_key=API_KEY)  # type: ignore[attr-defined]
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def hooks(btcpay_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=btcpay_app), base_url="http://hooks") as c:
        yield c


def envelope(invoice_id: str, event: str = "InvoiceSettled", **extra: Any) -> bytes:
    return json.dumps(
        {"deliveryId": uuid.uuid4().hex, "webhookId": "wh1", "originalDeliveryId": None, "isRedelivery": False,
         "type": event, "timestamp": int(time.time()), "storeId": "store1", "invoiceId": invoice_id,
         "metadata": {}, "manuallyMarked": False, "overPaid": False, **extra}
    ).encode()  # fmt: skip


def signed(body: bytes, secret: str = BTCPAY_SECRET) -> dict[str, str]:
    return {"BTCPay-Sig": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


class TestBtcPay:
    async def test_settled_invoice_is_credited_for_what_was_paid(
        self, hooks: httpx.AsyncClient, greenfield: FakeGreenfield, make_customer: MakeCustomer, sessionmaker, tiers
    ) -> None:
        customer = await make_customer()
        # 0.0015 BTC at 66,666.66 USD = 99.999999 USD received -> 99.999 (rounded down).
        invoice_id = greenfield.settle(paid_btc="0.0015", rate="66666.66", metadata={"ordersvcAccount": customer.email})
        body = envelope(invoice_id)
        response = await hooks.post("/webhooks/btcpay", content=body, headers=signed(body))
        assert (response.status_code, response.json()) == (200, {"status": "credited"})
        assert await snapshot(sessionmaker, customer) == ("99.999", 1, 0)

    async def test_redeliveries_credit_once_without_asking_btcpay_again(
        self, hooks: httpx.AsyncClient, greenfield: FakeGreenfield, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        customer = await make_customer()
        invoice_id = greenfield.settle(paid_btc="0.001", rate="50000", metadata={"buyerEmail": customer.email})
        bodies = [envelope(invoice_id, isRedelivery=n > 0) for n in range(20)]
        responses = await asyncio.gather(
            *(hooks.post("/webhooks/btcpay", content=b, headers=signed(b)) for b in bodies)
        )
        assert sorted(r.json()["status"] for r in responses) == ["credited"] + ["duplicate"] * 19
        calls = greenfield.calls
        again = await hooks.post("/webhooks/btcpay", content=bodies[0], headers=signed(bodies[0]))
        assert again.json() == {"status": "duplicate"}
        assert greenfield.calls == calls
        assert await snapshot(sessionmaker, customer) == ("50.00", 1, 0)

    async def test_address_in_the_pool_names_the_account_too(
        self, hooks: httpx.AsyncClient, greenfield: FakeGreenfield, make_customer, address_for: AddressFor, sessionmaker
    ) -> None:
        from ordersvc.deposits.models import Network

        customer = await make_customer()
        address = await address_for(customer.account_id, Network.BTC)
        invoice_id = greenfield.settle(paid_btc="0.0002", rate="50000", metadata={}, address=address)
        body = envelope(invoice_id)
        assert (await hooks.post("/webhooks/btcpay", content=body, headers=signed(body))).json()["status"] == "credited"
        assert (await snapshot(sessionmaker, customer))[0] == "10.00"

    async def test_unknown_account_is_unmatched(self, hooks: httpx.AsyncClient, greenfield: FakeGreenfield) -> None:
        invoice_id = greenfield.settle(
            paid_btc="0.001", rate="50000", metadata={"ordersvcAccount": "ghost@example.com"}
        )
        body = envelope(invoice_id)
        assert (await hooks.post("/webhooks/btcpay", content=body, headers=signed(body))).json() == {
            "status": "unmatched"
        }

    @pytest.mark.parametrize(
        "event", ["InvoiceCreated", "InvoiceReceivedPayment", "InvoiceProcessing", "InvoiceExpired"]
    )
    async def test_other_events_store_nothing(self, hooks: httpx.AsyncClient, event: str) -> None:
        body = envelope("whatever", event=event)
        assert (await hooks.post("/webhooks/btcpay", content=body, headers=signed(body))).json() == {
            "status": "not_final"
        }

    @pytest.mark.parametrize(
        "headers",
        [{}, {"BTCPay-Sig": "sha256=" + "0" * 64}, {"BTCPay-Sig": "sha1=abc"}, signed(b"other body")],
    )
    async def test_bad_signature_is_401_before_anything_is_read(
        self, hooks: httpx.AsyncClient, greenfield: FakeGreenfield, headers: dict[str, str]
    ) -> None:
        calls = greenfield.calls
        body = envelope(greenfield.settle(paid_btc="1", rate="1", metadata={}))
        response = await hooks.post("/webhooks/btcpay", content=body, headers=headers)
        assert (response.status_code, response.json()["code"]) == (401, "bad_signature")
        assert greenfield.calls == calls

    async def test_btcpay_unreachable_is_503_and_stores_nothing(
        self, hooks: httpx.AsyncClient, greenfield: FakeGreenfield, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        customer = await make_customer()
        invoice_id = greenfield.settle(paid_btc="0.001", rate="50000", metadata={"ordersvcAccount": customer.email})
        body = envelope(invoice_id)
        greenfield.down = True
        try:
            response = await hooks.post("/webhooks/btcpay", content=body, headers=signed(body))
        finally:
            greenfield.down = False
        assert (response.status_code, response.json()["code"]) == (503, "processor_unavailable")
        # BTCPay redelivers; then it is credited.
        assert (await hooks.post("/webhooks/btcpay", content=body, headers=signed(body))).json()["status"] == "credited"
        assert await snapshot(sessionmaker, customer) == ("50.00", 1, 0)

    async def test_path_injection_in_ids_is_refused(self, hooks: httpx.AsyncClient) -> None:
        body = envelope("../../users")
        assert (await hooks.post("/webhooks/btcpay", content=body, headers=signed(body))).status_code == 422


class TestBtcPayInvoices:
    async def test_partially_paid_settled_invoice_credits_what_was_paid(
        self, hooks: httpx.AsyncClient, greenfield: FakeGreenfield, make_customer: MakeCustomer, sessionmaker
    ) -> None:
        customer = await make_customer()
        # A 100 USD invoice marked settled after 0.0004 BTC at 50,000 = 20 USD arrived.
        invoice_id = greenfield.settle(paid_btc="0.0004", rate="50000", metadata={"ordersvcAccount": customer.email})
        body = envelope(invoice_id, manuallyMarked=True)
        assert (await hooks.post("/webhooks/btcpay", content=body, headers=signed(body))).json()["status"] == "credited"
        assert (await snapshot(sessionmaker, customer))[0] == "20.00"

    async def test_non_usd_invoice_is_refused(self, hooks: httpx.AsyncClient, greenfield: FakeGreenfield) -> None:
        invoice_id = greenfield.settle(paid_btc="0.001", rate="50000", metadata={})
        greenfield.invoices[invoice_id][0]["currency"] = "EUR"
        body = envelope(invoice_id)
        response = await hooks.post("/webhooks/btcpay", content=body, headers=signed(body))
        assert (response.status_code, response.json()["code"]) == (422, "invalid_payload")
