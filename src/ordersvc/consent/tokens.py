"""Signed, expiring tokens for the links in consent messages: `<payload>.<signature>`, where the
payload is `<consent id>.<action>.<expiry unix time>` in URL-safe base64 and the signature its
HMAC-SHA256 under the consent-link key derived from the service's secret (keyring.py): signed with
the current secret, accepted under any configured one."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from enum import StrEnum

from ordersvc.errors import ServiceError
from ordersvc.keyring import Keyring, Purpose


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


def sign(keys: Keyring, token: ConsentToken) -> str:
    payload = _b64(f"{token.consent_id}.{token.action.value}.{token.expires}".encode())
    return f"{payload}.{_b64(keys.sign(Purpose.CONSENT_LINK, payload.encode()))}"


def _signature_holds(keys: Keyring, payload: str, signature: str) -> bool:
    try:
        raw = _unb64(signature)
    except (ValueError, binascii.Error):
        return False
    # Only the canonical spelling: base64 decoding ignores stray bits, and a link is one string.
    return _b64(raw) == signature and keys.verify(Purpose.CONSENT_LINK, payload.encode(), raw)


def verify(keys: Keyring, text: str, *, now: int) -> ConsentToken:
    """The token, if its signature holds and it has not expired."""
    payload, _, signature = text.partition(".")
    if not payload or len(text) > 200 or not text.isascii() or not _signature_holds(keys, payload, signature):
        raise InvalidToken()
    try:
        consent_id, action, expires = _unb64(payload).decode().split(".")
        token = ConsentToken(int(consent_id), ConsentAction(action), int(expires))
    except (ValueError, UnicodeDecodeError):
        raise InvalidToken() from None
    if token.expires < now:
        raise ExpiredToken()
    return token
