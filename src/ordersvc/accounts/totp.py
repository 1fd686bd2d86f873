"""TOTP (RFC 6238 over RFC 4226's HOTP): HMAC-SHA1, 6 digits, 30-second steps, what every
authenticator app uses by default."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote

from ordersvc.text import is_ascii_digits

STEP_SECONDS = 30
DIGITS = 6
# A code from the step before or after is accepted too: clocks and typing take time.
WINDOW = 1


def new_secret() -> str:
    """160 random bits (RFC 4226's recommended length), base32 without padding."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    return base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)


def hotp(secret: str, counter: int) -> str:
    digest = hmac.new(_key(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def step_at(unix_time: float) -> int:
    return int(unix_time // STEP_SECONDS)


def matching_step(secret: str, code: str, *, now: float, after_step: int | None) -> int | None:
    """The time step whose code this is (within the window), or None. Steps up to `after_step`
    (the last one accepted) are refused: a code works once."""
    code = code.replace(" ", "")
    if len(code) != DIGITS or not is_ascii_digits(code):  # compare_digest raises on non-ASCII
        return None
    current = step_at(now)
    for step in range(current - WINDOW, current + WINDOW + 1):
        if after_step is not None and step <= after_step:
            continue
        if hmac.compare_digest(hotp(secret, step), code):
            return step
    return None


def provisioning_uri(secret: str, *, account: str, issuer: str = "ordersvc") -> str:
    """The otpauth:// URI an authenticator app reads from a QR code."""
    label = quote(f"{issuer}:{account}", safe="@:")
    return f"otpauth://totp/{label}?secret={secret}&issuer={quote(issuer)}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}"
