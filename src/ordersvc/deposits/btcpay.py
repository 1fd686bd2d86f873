"""BTCPay Server (Greenfield API): `InvoiceSettled` says which invoice settled but carries no
amount, so the invoice and what was actually paid into it are read back from the API."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from ordersvc.deposits.models import Network, Processor
from ordersvc.deposits.payloads import load_json
from ordersvc.deposits.service import DepositEvent, usd_to_mills
from ordersvc.errors import ServiceError

SETTLED_EVENT = "InvoiceSettled"
# Greenfield ids are URL-safe tokens; anything else must not reach an API path.
_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
# Payment method ids look like `BTC-CHAIN`, `BTC-LN`, `LTC-CHAIN` (or plain `BTC` before 2.0).
NETWORKS = {"BTC": Network.BTC, "LTC": Network.LTC}


class ProcessorUnavailable(ServiceError):
    # 503: BTCPay redelivers a webhook that failed, so nothing is lost.
    status = 503
    code = "processor_unavailable"
    message = "The processor's API could not be reached; the webhook should be redelivered."


class InvalidInvoice(ServiceError):
    status = 422
    code = "invalid_payload"
    message = "The BTCPay webhook does not name a settled USD invoice we can read."


@dataclass(frozen=True, slots=True)
class SettledInvoice:
    envelope: dict[str, Any]
    invoice: dict[str, Any]
    payment_methods: list[dict[str, Any]]


def invoice_ref(envelope: dict[str, Any]) -> tuple[str, str] | None:
    """(store id, invoice id) of an `InvoiceSettled` event; None for every other event."""
    if envelope.get("type") != SETTLED_EVENT:
        return None
    store_id, invoice_id = envelope.get("storeId"), envelope.get("invoiceId")
    if not isinstance(store_id, str) or not isinstance(invoice_id, str):
        raise InvalidInvoice()
    if _ID.fullmatch(store_id) is None or _ID.fullmatch(invoice_id) is None:
        raise InvalidInvoice()
    return store_id, invoice_id


async def fetch_invoice(
    envelope: dict[str, Any], *, base_url: str, api_key: str, store_id: str, invoice_id: str
) -> SettledInvoice:
    path = f"/api/v1/stores/{store_id}/invoices/{invoice_id}"
    try:
        async with httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"token {api_key}"}, timeout=10
        ) as client:
            invoice = await client.get(path)
            methods = await client.get(f"{path}/payment-methods")
    except httpx.HTTPError:
        raise ProcessorUnavailable() from None
    if invoice.status_code != 200 or methods.status_code != 200:
        raise ProcessorUnavailable()
    try:  # nesting bounded: the payload is stored through clean_payload, which recurses per level
        invoice_json, methods_json = load_json(invoice.content), load_json(methods.content)
    except ValueError:
        raise ProcessorUnavailable() from None
    if not isinstance(invoice_json, dict) or not isinstance(methods_json, list):
        raise ProcessorUnavailable()
    return SettledInvoice(envelope, invoice_json, [m for m in methods_json if isinstance(m, dict)])


def _decimal(value: Any) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)
    return number if number.is_finite() and number > 0 else Decimal(0)


def btcpay_event(settled: SettledInvoice) -> DepositEvent:
    """The USD actually received: each payment method's paid amount at its rate (the rate is
    in the invoice currency, which must be USD). The account is the invoice's
    `metadata.ordersvcAccount` (or `buyerEmail`); failing that, the destination address."""
    invoice = settled.invoice
    if invoice.get("status") != "Settled" or str(invoice.get("currency", "")).upper() != "USD":
        raise InvalidInvoice()
    paid = [(m, _decimal(m.get("paymentMethodPaid")) * _decimal(m.get("rate"))) for m in settled.payment_methods]
    amount = usd_to_mills(sum((usd for _, usd in paid), Decimal(0)))
    if amount is None:
        raise InvalidInvoice()
    main, _ = max(paid, key=lambda pair: pair[1])
    method_id = str(main.get("paymentMethodId") or main.get("paymentMethod") or "")
    network = NETWORKS.get(method_id.split("-")[0].upper())
    payments = [p for p in main.get("payments") or [] if isinstance(p, dict)]
    raw_metadata = invoice.get("metadata")
    metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    email = metadata.get("ordersvcAccount") or metadata.get("buyerEmail")
    return DepositEvent(
        processor=Processor.BTCPAY.value,
        external_id=str(settled.envelope["invoiceId"]),  # dedupe on the invoice id
        amount_mills=amount,
        payload={"webhook": settled.envelope, "invoice": invoice, "paymentMethods": settled.payment_methods},
        network=network.value if network else method_id or None,
        address=str(main["destination"]) if main.get("destination") else None,
        tx_hash=(str(payments[0].get("id", "")).split("-")[0] or None) if payments else None,
        account_email=email if isinstance(email, str) else None,
    )
