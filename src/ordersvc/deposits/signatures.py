"""Webhook signature checks, each over the raw body before anything is used.

Headers are parsed strictly (hex digests of the expected length, a decimal timestamp) and
digests are compared as bytes in constant time, so no header can make a check raise."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from decimal import Decimal
from typing import Any

from ordersvc.deposits.payloads import load_json_object
from ordersvc.errors import ServiceError

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_SHA512_HEX = re.compile(r"^[0-9a-f]{128}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


class BadSignature(ServiceError):
    status = 401
    code = "bad_signature"
    message = "The webhook signature does not verify."


def _matches(expected_hex: str, given: str, shape: re.Pattern[str]) -> bool:
    given = given.strip().lower()
    return shape.fullmatch(given) is not None and hmac.compare_digest(expected_hex.encode(), given.encode())


def verify_btcpay(header: str | None, body: bytes, secret: str) -> None:
    """`BTCPay-Sig: sha256=<hex HMAC-SHA256 of the raw body>`."""
    scheme, _, signature = (header or "").partition("=")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if scheme.strip().lower() != "sha256" or not _matches(expected, signature, _SHA256_HEX):
        raise BadSignature()


def _js_number(value: float) -> str:
    """A float as JavaScript's JSON.stringify writes it (`5e-7`, not Python's `5e-07`)."""
    if not math.isfinite(value):
        return "null"
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    mantissa = "".join(map(str, digits)).rstrip("0") or "0"
    point = exponent + len(digits)  # value = 0.<digits> x 10^point
    scientific = point - 1
    prefix = "-" if sign else ""
    if -7 < scientific < 21:
        if point <= 0:
            return f"{prefix}0.{'0' * -point}{mantissa}"
        whole, frac = mantissa[:point].ljust(point, "0"), mantissa[point:]
        return f"{prefix}{whole}.{frac}" if frac else f"{prefix}{whole}"
    rest = f".{mantissa[1:]}" if len(mantissa) > 1 else ""
    return f"{prefix}{mantissa[0]}{rest}e{'+' if scientific > 0 else '-'}{abs(scientific)}"


def _js_json(value: Any) -> str:
    """JSON.stringify of a recursively key-sorted object (NOWPayments' Node recipe)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{_js_json(str(k))}:{_js_json(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_js_json(v) for v in value) + "]"
    if isinstance(value, float):
        return _js_number(value)
    return json.dumps(value, ensure_ascii=False)


def nowpayments_signed_strings(payload: dict[str, Any]) -> list[str]:
    """What NOWPayments may have signed: the JSON of the body with keys sorted recursively,
    compact, as their Python recipe writes it (`json.dumps(..., separators=(',', ':'),
    sort_keys=True)`), with raw UTF-8, or as their Node recipe writes it. A match with any of
    them proves the sender knows the secret; trying several only avoids refusing a real IPN
    over a serialisation detail."""
    python = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    utf8 = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return list(dict.fromkeys([python, utf8, _js_json(payload)]))


def nowpayments_signature(header: str | None) -> str:
    """The `x-nowpayments-sig` header when it is shaped like one (128 hex digits): checked
    before the body is read, so a request without one costs nothing more."""
    given = (header or "").strip().lower()
    if _SHA512_HEX.fullmatch(given) is None:
        raise BadSignature()
    return given


def verify_nowpayments(header: str | None, body: bytes, secret: str) -> dict[str, Any]:
    """`x-nowpayments-sig`: hex HMAC-SHA512 of the body re-serialised with sorted keys. The
    body must be parsed to re-serialise it, but nothing is used before the signature holds.
    Its nesting is bounded before parsing (`payloads.load_json_object`): the re-serialisations
    recurse once per level, and an unauthenticated body must not be able to exhaust that."""
    signature = nowpayments_signature(header)
    payload = load_json_object(body)
    if payload is None:
        raise BadSignature()
    for signed in nowpayments_signed_strings(payload):
        expected = hmac.new(secret.encode(), signed.encode("utf-8", "surrogatepass"), hashlib.sha512).hexdigest()
        if _matches(expected, signature, _SHA512_HEX):
            return payload
    raise BadSignature()


def verify_timestamped(header: str | None, body: bytes, secrets: list[str], *, now: int, tolerance: int) -> None:
    """`Ordersvc-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`: HMAC-SHA256 of `"<t>.<body>"`.

    Any `v1` may match any current secret (rotation: the sender signs with old and new). A
    timestamp further than `tolerance` seconds from now is refused, so a captured request
    cannot be replayed later."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and _TIMESTAMP.fullmatch(value):
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures or abs(now - timestamp) > tolerance:
        raise BadSignature()
    signed = f"{timestamp}.".encode() + body
    expected = [hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest() for secret in secrets]
    if not any(_matches(e, s, _SHA256_HEX) for e in expected for s in signatures):
        raise BadSignature()
