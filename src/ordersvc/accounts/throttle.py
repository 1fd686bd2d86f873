"""The throttle of sign-ins, current-password checks and requests that send mail: failures per key
(an account, a client address) within a window; past a key's limit, wait for the window."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from ordersvc.accounts.models import AuthThrottle
from ordersvc.accounts.service import normalize_account_email
from ordersvc.emails import InvalidEmail
from ordersvc.errors import ServiceError
from ordersvc.timestamps import utc_now

# Sign-in throttle: failures per key within the window; past the limit, wait for the window.
THROTTLE_WINDOW = timedelta(minutes=15)
ACCOUNT_FAILURES = 5
IP_FAILURES = 30
# Requests that send mail to an address the caller names (sign-up, resend, reset), per client
# address and window: nobody floods a mailbox, or keeps a victim's reset link dying.
IP_MAIL_REQUESTS = 20
# Throttle rows past their window deleted per housekeeping round (bounded: one short statement).
THROTTLE_PRUNE_BATCH = 10_000

Attempts = async_sessionmaker[AsyncSession]
"""Where the throttle counts: each attempt is counted in a transaction of its own, committed
before the check it guards (the caller's transaction rolls back when the check fails)."""


class TooManyAttempts(ServiceError):
    status = 429
    code = "too_many_attempts"

    def __init__(self, retry_after: int, what: str = "Too many failed sign-ins.") -> None:
        self.retry_after = retry_after
        super().__init__(f"{what} Try again in {retry_after} s.")


def account_keys(address: str, scope: str = "account") -> list[tuple[str, int]]:
    """The throttle's key for an account (by its normalised address), alone: current-password
    checks share the sign-in count of the account (`scope` "operator": an operator's)."""
    return [(f"{scope}:{address}", ACCOUNT_FAILURES)]


def sign_in_keys(
    email: str, ip: str, *, scope: str = "account", normalize: Callable[[str], str] = normalize_account_email
) -> list[tuple[str, int]]:
    """The throttle's keys for a sign-in: the account (or, with `scope`, the operator) by its
    normalised address, so spellings of one address share one count, and the client's address."""
    try:
        address = normalize(email)
    except InvalidEmail:
        address = email.strip().lower()
    return [*account_keys(address, scope), (f"ip:{ip}", IP_FAILURES)]


async def _take_attempt(
    session: AsyncSession, keys: list[tuple[str, int]], *, what: str = "Too many failed sign-ins."
) -> None:
    """Count an attempt against each key before it is made, so parallel guesses cannot all pass
    a check made before any is counted. Raises TooManyAttempts with the wait once a key is over
    its limit in its window; `attempt_succeeded` takes a successful one back."""
    now = utc_now()
    wait = 0
    for key, limit in keys:
        stale = col(AuthThrottle.window_start) + THROTTLE_WINDOW <= now
        stmt = (
            pg_insert(AuthThrottle)
            .values(key=key, failures=1, window_start=now)
            .on_conflict_do_update(
                index_elements=["key"],
                set_={
                    "failures": sa.case((stale, 1), else_=col(AuthThrottle.failures) + 1),
                    "window_start": sa.case((stale, now), else_=col(AuthThrottle.window_start)),
                },
            )
            .returning(col(AuthThrottle.failures), col(AuthThrottle.window_start))
        )
        failures, window_start = (await session.execute(stmt)).one()
        if failures > limit:
            wait = max(wait, int((window_start + THROTTLE_WINDOW - now).total_seconds()) + 1)
    if wait:
        raise TooManyAttempts(wait, what)


async def count_attempt(
    attempts: Attempts, keys: list[tuple[str, int]], *, what: str = "Too many failed sign-ins."
) -> None:
    """Count an attempt in a transaction of its own, committed at once: a failed check rolls
    back the caller's transaction, never the count."""
    async with attempts.begin() as counting:
        await _take_attempt(counting, keys, what=what)


async def count_mail_request(attempts: Attempts, ip: str) -> None:
    """Requests that mail an address the caller names, per client address."""
    await count_attempt(attempts, [(f"mail:{ip}", IP_MAIL_REQUESTS)], what="Too many requests from your address.")


async def attempt_succeeded(session: AsyncSession, keys: list[tuple[str, int]]) -> None:
    """A right answer: the account's count starts again; the address's attempt is taken back."""
    (account_key, _), *others = keys
    await session.execute(sa.delete(AuthThrottle).where(col(AuthThrottle.key) == account_key))
    for key, _ in others:
        await session.execute(
            sa.update(AuthThrottle)
            .where(col(AuthThrottle.key) == key, col(AuthThrottle.failures) > 0)
            .values(failures=col(AuthThrottle.failures) - 1)
        )


async def prune_throttle(session: AsyncSession, *, limit: int = THROTTLE_PRUNE_BATCH) -> int:
    """Delete up to `limit` throttle rows whose window has passed; how many. Such a row counts
    for nothing (the next attempt starts a new window), but every guessed address and every
    client address leaves one: the mailer's housekeeping calls this each round, so the table
    holds about one window's keys. Rows an attempt is counting right now are skipped."""
    stale = (
        sa.select(col(AuthThrottle.key))
        .where(col(AuthThrottle.window_start) <= utc_now() - THROTTLE_WINDOW)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    deleted = await session.execute(
        sa.delete(AuthThrottle).where(col(AuthThrottle.key).in_(stale)).returning(col(AuthThrottle.key))
    )
    return len(deleted.scalars().all())
