"""Signed, expiring tokens for the links in consent messages: `<payload>.<signature>`, where the
payload is `<consent id>.<action>.<expiry unix time>` in URL-safe base64 and the signature its
HMAC-SHA256 under the service's secret key."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

from ordersvc.errors import ServiceError


class ConsentAction(StrEnum):
    CONFIRM = "confirm"
    DECLINE = "decline"
    OPT_OUT = "optout"  # "never contact me": global, for the address


class InvalidToken(ServiceError):
    status = 400
    code = "invalid_token"
    message = "This link is not valid."


class ExpiredToken(ServiceError):
    status = 410
    code = "expired_token"
    message = "This link has expired."


@dataclass(frozen=True, slots=True)
class ConsentToken:
    consent_id: int
    action: ConsentAction
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def sign(secret: str, token: ConsentToken) -> str:
    payload = _b64(f"{token.consent_id}.{token.action.value}.{token.expires}".encode())
    return f"{payload}.{_signature(secret, payload)}"


def verify(secret: str, text: str, *, now: int) -> ConsentToken:
    """The token, if its signature holds and it has not expired."""
    payload, _, signature = text.partition(".")
    if (
        not payload
        or len(text) > 200
        or not hmac.compare_digest(_signature(secret, payload).encode(), signature.encode("ascii", "replace"))
    ):
        raise InvalidToken()
    try:
        consent_id, action, expires = _unb64(payload).decode().split(".")
        token = ConsentToken(int(consent_id), ConsentAction(action), int(expires))
    except (ValueError, UnicodeDecodeError):
        raise InvalidToken() from None
    if token.expires < now:
        raise ExpiredToken()
    return token
