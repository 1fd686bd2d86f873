"""Processor webhooks: verify the signature over the raw body, then record the deposit once.

Answers: 200 `{"status": "credited" | "unmatched" | "duplicate" | "not_final"}`; 401 for a bad
signature (nothing stored); 404 when the processor is not configured; 415 for a NOWPayments body
declared as something else than JSON; 422 for a signed payload that is not a readable deposit,
or whose transaction hash is not one of its network (nothing stored)."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, Request

from ordersvc.bodies import read_body
from ordersvc.config import Settings
from ordersvc.deposits import btcpay, processors, service
from ordersvc.deposits.models import Processor
from ordersvc.deposits.payloads import load_json_object
from ordersvc.deposits.signatures import (
    BadSignature,
    nowpayments_signature,
    verify_btcpay,
    verify_nowpayments,
    verify_timestamped,
)
from ordersvc.errors import NotFound, ServiceError
from ordersvc.ops.client_text import CleanedBodyRoute
from ordersvc.request_db import SessionDep

# Signed events are stored cleaned, never refused for their text (CleanedBodyRoute).
router = APIRouter(prefix="/webhooks", include_in_schema=False, route_class=CleanedBodyRoute)

MAX_WEBHOOK_BODY = 256 * 1024
# An IPN is about 1 KB; its body is parsed before its signature can be checked, so it gets less.
MAX_NOWPAYMENTS_BODY = 32 * 1024


class ProcessorDisabled(NotFound):
    code = "processor_not_configured"
    message = "This processor is not configured on this server."


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "unsupported_media_type"
    message = "The webhook body must be JSON (Content-Type: application/json)."


async def _raw_body(request: Request, limit: int = MAX_WEBHOOK_BODY) -> bytes:
    # Bounded while reading: an unsigned flood is refused without being held in memory.
    body = await read_body(request, limit)
    if body is None:
        raise BadSignature()
    return body


def _require_json_content_type(request: Request) -> None:
    """A declared Content-Type must be JSON's (none declared is accepted, as curl sends it)."""
    declared = request.headers.get("content-type")
    if declared is None:
        return
    media_type = declared.split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType()


def _json_object(body: bytes) -> dict[str, Any]:
    payload = load_json_object(body)  # nesting bounded: clean_payload recurses once per level
    if payload is None:
        raise processors.InvalidPayload()
    return payload


async def _record(session: SessionDep, processor: Processor, event: service.DepositEvent | None) -> dict[str, str]:
    if event is None:
        await service.log_event(session, processor.value, None, "not_final")
        return {"status": "not_final"}
    return {"status": (await service.record_deposit(session, event)).status}


async def _logged(request: Request, processor: Processor, work: Awaitable[dict[str, str]]) -> dict[str, str]:
    """The signed event's handling; a refusal is logged (`ProcessorEvent`, `refused`) in a
    transaction of its own, as the request's rolls back."""
    try:
        return await work
    except ServiceError as exc:
        await service.log_refused(request.app.state.sessionmaker, processor.value, exc.code)
        raise


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

    async def work() -> dict[str, str]:
        return await _record(
            session, Processor.CHAIN, processors.chain_event(_json_object(body), settings.chain_confirmations)
        )

    return await _logged(request, Processor.CHAIN, work())


@router.post("/nowpayments")
async def nowpayments_webhook(request: Request, session: SessionDep) -> dict[str, str]:
    settings: Settings = request.app.state.settings
    if not settings.nowpayments_ipn_secret:
        raise ProcessorDisabled()
    # What can be checked before the body is parsed is checked first: the signature header's
    # shape, the media type, the size (a fraction of the other webhooks').
    header = request.headers.get("x-nowpayments-sig")
    nowpayments_signature(header)
    _require_json_content_type(request)
    body = await _raw_body(request, MAX_NOWPAYMENTS_BODY)
    payload = verify_nowpayments(header, body, settings.nowpayments_ipn_secret)

    async def work() -> dict[str, str]:
        return await _record(session, Processor.NOWPAYMENTS, processors.nowpayments_event(payload))

    return await _logged(request, Processor.NOWPAYMENTS, work())


@router.post("/btcpay")
async def btcpay_webhook(request: Request, session: SessionDep) -> dict[str, str]:
    settings: Settings = request.app.state.settings
    if not (settings.btcpay_webhook_secret and settings.btcpay_url and settings.btcpay_api_key):
        raise ProcessorDisabled()
    body = await _raw_body(request)
    verify_btcpay(request.headers.get("btcpay-sig"), body, settings.btcpay_webhook_secret)
    base_url, api_key = settings.btcpay_url, settings.btcpay_api_key

    async def work() -> dict[str, str]:
        envelope = _json_object(body)
        ref = btcpay.invoice_ref(envelope)
        if ref is None:
            return await _record(session, Processor.BTCPAY, None)
        store_id, invoice_id = ref
        # Redeliveries are normal: a recorded invoice is answered without asking BTCPay again.
        if await service.is_recorded(session, processor=Processor.BTCPAY.value, external_id=invoice_id):
            await service.log_event(session, Processor.BTCPAY.value, invoice_id, "duplicate")
            return {"status": "duplicate"}
        settled = await btcpay.fetch_invoice(
            envelope,
            base_url=base_url,
            api_key=api_key,
            store_id=store_id,
            invoice_id=invoice_id,
        )
        return await _record(session, Processor.BTCPAY, btcpay.btcpay_event(settled))

    return await _logged(request, Processor.BTCPAY, work())
