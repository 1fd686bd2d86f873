"""Processor webhooks: verify the signature over the raw body, then record the deposit once.

Answers: 200 `{"status": "credited" | "unmatched" | "duplicate" | "not_final"}`; 401 for a bad
signature (nothing stored); 404 when the processor is not configured; 422 for a signed payload
that is not a readable deposit (nothing stored)."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Request

from ordersvc.bodies import read_body
from ordersvc.config import Settings
from ordersvc.db import SessionDep
from ordersvc.deposits import btcpay, processors, service
from ordersvc.deposits.models import Processor
from ordersvc.deposits.signatures import BadSignature, verify_btcpay, verify_nowpayments, verify_timestamped
from ordersvc.errors import NotFound

router = APIRouter(prefix="/webhooks", include_in_schema=False)

MAX_WEBHOOK_BODY = 256 * 1024


class ProcessorDisabled(NotFound):
    code = "processor_not_configured"
    message = "This processor is not configured on this server."


async def _raw_body(request: Request) -> bytes:
    # Bounded while reading: an unsigned flood is refused without being held in memory.
    body = await read_body(request, MAX_WEBHOOK_BODY)
    if body is None:
        raise BadSignature()
    return body


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise processors.InvalidPayload() from None
    if not isinstance(payload, dict):
        raise processors.InvalidPayload()
    return payload


async def _record(session: SessionDep, event: service.DepositEvent | None) -> dict[str, str]:
    if event is None:
        return {"status": "not_final"}
    return {"status": (await service.record_deposit(session, event)).status}


@router.post("/chain")
async def chain_webhook(request: Request, session: SessionDep) -> dict[str, str]:
    settings: Settings = request.app.state.settings
    if not settings.chain_webhook_secrets:
        raise ProcessorDisabled()
    body = await _raw_body(request)
    verify_timestamped(
        request.headers.get("ordersvc-signature"),
        body,
        settings.chain_webhook_secrets,
        now=int(time.time()),
        tolerance=settings.chain_webhook_tolerance_seconds,
    )
    return await _record(session, processors.chain_event(_json_object(body), settings.chain_confirmations))


@router.post("/nowpayments")
async def nowpayments_webhook(request: Request, session: SessionDep) -> dict[str, str]:
    settings: Settings = request.app.state.settings
    if not settings.nowpayments_ipn_secret:
        raise ProcessorDisabled()
    payload = verify_nowpayments(
        request.headers.get("x-nowpayments-sig"), await _raw_body(request), settings.nowpayments_ipn_secret
    )
    return await _record(session, processors.nowpayments_event(payload))


@router.post("/btcpay")
async def btcpay_webhook(request: Request, session: SessionDep) -> dict[str, str]:
    settings: Settings = request.app.state.settings
    if not (settings.btcpay_webhook_secret and settings.btcpay_url and settings.btcpay_api_key):
        raise ProcessorDisabled()
    body = await _raw_body(request)
    verify_btcpay(request.headers.get("btcpay-sig"), body, settings.btcpay_webhook_secret)
    envelope = _json_object(body)
    ref = btcpay.invoice_ref(envelope)
    if ref is None:
        return {"status": "not_final"}
    store_id, invoice_id = ref
    # Redeliveries are normal: a recorded invoice is answered without asking BTCPay again.
    if await service.is_recorded(session, processor=Processor.BTCPAY.value, external_id=invoice_id):
        return {"status": "duplicate"}
    settled = await btcpay.fetch_invoice(
        envelope,
        base_url=settings.btcpay_url,
        api_key=settings.btcpay_api_key,
        store_id=store_id,
        invoice_id=invoice_id,
    )
    return await _record(session, btcpay.btcpay_event(settled))
