"""High-entropy bearer secrets (customer API keys `osk_...`, worker tokens `owk_...`): shown
once, stored as a SHA-256 hash, found by their non-secret prefix, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

# The prefix is the scheme and 8 characters (48 random bits): it finds the row; the remaining
# 256-bit secret is checked against the stored hash.
PREFIX_LENGTH = 12
_DUMMY_HASH = hashlib.sha256(b"no such token").digest()


@dataclass(frozen=True, slots=True)
class TokenScheme:
    scheme: str  # "osk_" or "owk_"

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(rf"^{self.scheme}[A-Za-z0-9_-]{{8,120}}$")

    def new(self) -> str:
        return self.scheme + secrets.token_urlsafe(32)

    def well_formed(self, value: object) -> bool:
        return isinstance(value, str) and self.pattern.fullmatch(value) is not None


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def prefix_of(token: str) -> str:
    return token[:PREFIX_LENGTH]


def matches(token: str, stored_hash: bytes | None) -> bool:
    """Constant-time check, also when no row was found (`stored_hash` None)."""
    return hmac.compare_digest(hash_token(token), stored_hash or _DUMMY_HASH) and stored_hash is not None
