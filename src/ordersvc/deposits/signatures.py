"""Webhook signature checks, each over the raw body before anything is parsed."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from ordersvc.errors import ServiceError


class BadSignature(ServiceError):
    status = 401
    code = "bad_signature"
    message = "The webhook signature does not verify."


def verify_btcpay(header: str | None, body: bytes, secret: str) -> None:
    """`BTCPay-Sig: sha256=<hex HMAC-SHA256 of the raw body>`."""
    scheme, _, signature = (header or "").partition("=")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if scheme.strip().lower() != "sha256" or not hmac.compare_digest(expected, signature.strip().lower()):
        raise BadSignature()


def nowpayments_signed_string(payload: dict[str, Any]) -> str:
    """NOWPayments signs the JSON of the body with keys sorted recursively, compact: exactly
    their documented Python `json.dumps(message, separators=(',', ':'), sort_keys=True)`."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def verify_nowpayments(header: str | None, body: bytes, secret: str) -> dict[str, Any]:
    """`x-nowpayments-sig`: hex HMAC-SHA512 of the body re-serialised with sorted keys. The
    body must be parsed to re-serialise it, but nothing is used before the signature holds."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise BadSignature() from None
    if not isinstance(payload, dict):
        raise BadSignature()
    signed = nowpayments_signed_string(payload).encode()
    expected = hmac.new(secret.encode(), signed, hashlib.sha512).hexdigest()
    if not hmac.compare_digest(expected, (header or "").strip().lower()):
        raise BadSignature()
    return payload


def verify_timestamped(header: str | None, body: bytes, secrets: list[str], *, now: int, tolerance: int) -> None:
    """`Ordersvc-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`: HMAC-SHA256 of `"<t>.<body>"`.

    Any `v1` may match any current secret (rotation: the sender signs with old and new). A
    timestamp further than `tolerance` seconds from now is refused, so a captured request
    cannot be replayed later."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value.strip().lower())
    if timestamp is None or not signatures or abs(now - timestamp) > tolerance:
        raise BadSignature()
    signed = f"{timestamp}.".encode() + body
    expected = [hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest() for secret in secrets]
    if not any(hmac.compare_digest(e, s) for e in expected for s in signatures):
        raise BadSignature()
