"""The second factor's secrets at rest.

TOTP secrets are sealed (AES-256-GCM, keyring.py) under a key derived from the service's secret,
bound to their account's id: a copy of the database alone signs nobody in. A secret sealed under a
fallback secret (after a rotation), or still in plain text (written before 0013), is sealed again
under the current secret at start-up (`reseal_totp_secrets`) and whenever it is used.

Recovery codes are 40 random bits, few enough to try them all against an unsalted hash (the
SHA-256 of up to 0013): each is stored as Argon2id of its SHA-256, with a salt of its own, at a
cost (8 MiB, 2 passes: about 9 ms) that makes trying 2^40 codes per stored hash take thousands of
CPU-years, while checking a sign-in against the ten codes of an account costs less than the
password check that comes before it. They do not depend on the service's secret on purpose: they
are what lets a user in when the TOTP secret is lost, a lost secret key included."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from ordersvc.accounts.models import Account, RecoveryCode
from ordersvc.keyring import Keyring, Purpose, UnsealError, is_sealed
from ordersvc.timestamps import utc_now

logger = logging.getLogger(__name__)

RECOVERY_CODES = 10
# Migration 0013 hashes the old SHA-256 rows with these same parameters.
_RECOVERY_HASHER = PasswordHasher(time_cost=2, memory_cost=8192, parallelism=1)
_RECOVERY_CODE = re.compile(r"[0-9a-f]{10}")
_SHA256_BYTES = 32


# TOTP secrets ------------------------------------------------------------------------------------


def _context(account_id: int) -> bytes:
    return f"accounts.totp_secret:{account_id}".encode()


def seal_totp_secret(keys: Keyring, account_id: int, secret: str) -> str:
    return keys.seal(Purpose.TOTP_SECRET, secret.encode(), context=_context(account_id))


@dataclass(frozen=True, slots=True)
class OpenedSecret:
    secret: str  # base32, as the authenticator app has it
    resealed: str | None  # the value to store instead (sealed under the current secret), if any


def open_totp_secret(keys: Keyring, account_id: int, stored: str) -> OpenedSecret | None:
    """The account's TOTP secret, or None when no configured secret key opens it (logged: the
    user can still sign in with a recovery code, then enrol again)."""
    if not is_sealed(stored):  # plain text, written before 0013
        return OpenedSecret(stored, seal_totp_secret(keys, account_id, stored))
    try:
        opened = keys.unseal(Purpose.TOTP_SECRET, stored, context=_context(account_id))
    except UnsealError as exc:
        logger.error("TOTP secret of account %s cannot be used: %s", account_id, exc)
        return None
    secret = opened.plaintext.decode()
    return OpenedSecret(secret, None if opened.current else seal_totp_secret(keys, account_id, secret))


async def store_resealed(session: AsyncSession, account_id: int, stored: str, opened: OpenedSecret) -> None:
    """Replace `stored` by its resealed form, unless the row changed meanwhile (a new enrolment)."""
    if opened.resealed is None:
        return
    await session.execute(
        sa.update(Account)
        .where(col(Account.id) == account_id, col(Account.totp_secret) == stored)
        .values(totp_secret=opened.resealed)
    )


async def reseal_totp_secrets(session: AsyncSession, keys: Keyring) -> int:
    """Seal every TOTP secret not yet sealed under the current secret key (plain text from before
    0013, or sealed under a fallback): after a rotation, the fallback is then needed only by
    what is still in flight (links). Rows being changed right now are skipped (they are locked;
    their next use reseals them). Returns how many were resealed."""
    rows = (
        await session.execute(
            sa.select(col(Account.id), col(Account.totp_secret))
            .where(
                col(Account.totp_secret).is_not(None),
                sa.not_(col(Account.totp_secret).startswith(keys.current_seal_prefix, autoescape=True)),
            )
            .with_for_update(key_share=True, skip_locked=True)
        )
    ).all()
    resealed = 0
    for account_id, stored in rows:
        assert account_id is not None
        assert stored is not None
        opened = open_totp_secret(keys, account_id, stored)
        if opened is not None and opened.resealed is not None:
            await store_resealed(session, account_id, stored, opened)
            resealed += 1
    return resealed


async def reseal_at_start(maker: async_sessionmaker[AsyncSession], keys: Keyring) -> None:
    """`reseal_totp_secrets` in a transaction of its own, when a server starts. A failure is only
    logged: every secret is resealed on its next use anyway."""
    try:
        async with maker.begin() as session:
            resealed = await reseal_totp_secrets(session, keys)
    except (OSError, SQLAlchemyError) as exc:
        logger.warning("TOTP secrets not resealed at start-up (%s); each is on its next use", type(exc).__name__)
        return
    if resealed:
        logger.info("%d TOTP secrets sealed under the current secret key", resealed)


# Recovery codes ----------------------------------------------------------------------------------


def _digest(code: str) -> bytes:
    return hashlib.sha256(code.encode()).digest()


def _new_codes() -> list[tuple[str, bytes]]:
    codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODES)]  # 40 bits each, single use
    return [(f"{c[:5]}-{c[5:]}", _RECOVERY_HASHER.hash(_digest(c)).encode()) for c in codes]


async def new_recovery_codes(session: AsyncSession, account_id: int) -> list[str]:
    """Replace the account's recovery codes with new ones; returns them, to be shown this once."""
    codes = await asyncio.to_thread(_new_codes)  # ten Argon2 hashes: off the event loop
    await session.execute(sa.delete(RecoveryCode).where(col(RecoveryCode.account_id) == account_id))
    session.add_all(RecoveryCode(account_id=account_id, code_hash=stored) for _, stored in codes)
    await session.flush()
    return [shown for shown, _ in codes]


def _matches(stored: bytes, digest: bytes) -> bool:
    if len(stored) == _SHA256_BYTES:  # unsalted, written by a process older than 0013
        return hmac.compare_digest(stored, digest)
    try:
        return _RECOVERY_HASHER.verify(stored.decode("ascii"), digest)
    except (VerificationError, InvalidHashError, UnicodeDecodeError):
        return False


def _matching_row(rows: list[tuple[int, bytes]], digest: bytes) -> int | None:
    return next((row_id for row_id, stored in rows if _matches(stored, digest)), None)


async def use_recovery_code(session: AsyncSession, account_id: int, code: str) -> bool:
    """Spend one of the account's unused recovery codes, if `code` is one (`xxxxx-xxxxx`)."""
    code = code.replace("-", "").lower()
    if _RECOVERY_CODE.fullmatch(code) is None:
        return False  # not shaped like a code: no hashing for it
    rows = (
        await session.execute(
            sa.select(col(RecoveryCode.id), col(RecoveryCode.code_hash)).where(
                col(RecoveryCode.account_id) == account_id, col(RecoveryCode.used_at).is_(None)
            )
        )
    ).all()
    row_id = await asyncio.to_thread(_matching_row, [(i, h) for i, h in rows if i is not None], _digest(code))
    if row_id is None:
        return False
    # Atomic: of two sign-ins with the same code at once, one spends it and the other fails.
    spent = await session.execute(
        sa.update(RecoveryCode)
        .where(col(RecoveryCode.id) == row_id, col(RecoveryCode.used_at).is_(None))
        .values(used_at=utc_now())
        .returning(col(RecoveryCode.id))
    )
    return spent.scalar_one_or_none() is not None
