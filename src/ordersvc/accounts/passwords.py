"""Passwords: Argon2id (argon2-cffi), a minimum length, and a list of common passwords shipped
with the package."""

from __future__ import annotations

import asyncio
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ordersvc.errors import InvalidParams

MIN_LENGTH = 10
MAX_LENGTH = 256  # hashing is deliberately slow: a bound keeps a huge "password" from costing more

# argon2-cffi's defaults (RFC 9106's second recommendation: Argon2id, t=3, 64 MiB, p=4).
_HASHER = PasswordHasher()
# Verified against when no account matched, so that an unknown email costs the same time.
_DUMMY_HASH = _HASHER.hash("no account has this password")


class WeakPassword(InvalidParams):
    code = "weak_password"
    message = f"Choose a password of {MIN_LENGTH} to {MAX_LENGTH} characters that is not a common one."
    field = "password"


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files("ordersvc.accounts").joinpath("common_passwords.txt").read_text()
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def check_policy(password: str, *, email: str) -> None:
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise WeakPassword()
    folded = password.lower()
    local_part = email.partition("@")[0].lower()
    if folded in common_passwords() or folded in (email.lower(), local_part) or len(set(password)) < 4:
        raise WeakPassword()


# Hashing takes tens of milliseconds of CPU by design: it runs in a thread (argon2-cffi releases
# the GIL), so the event loop goes on serving other requests meanwhile.


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


def _verify(stored_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password[:MAX_LENGTH]) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """The same work whether or not there is a hash to check (no account, no password yet)."""
    return await asyncio.to_thread(_verify, stored_hash, password)
