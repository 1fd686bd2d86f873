"""Standard Webhooks signatures (https://www.standardwebhooks.com): `webhook-id`,
`webhook-timestamp` (Unix seconds) and `webhook-signature`, `v1,<base64 HMAC-SHA256 of
"id.timestamp.body">` under each secret that signs (space-separated), so that the
`standardwebhooks` and `svix` libraries verify them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
_KEY_BYTES = 32


def new_secret() -> str:
    """`whsec_` and the base64 of 32 random bytes: the key as customers keep it."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(signing_secrets: list[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers, signed by every secret given (the current one first)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, message_id, timestamp, body) for s in signing_secrets),
    }
