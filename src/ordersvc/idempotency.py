"""`Idempotency-Key` for the REST operations that create or move something, apart from placing an
order (whose key is written by the order statement itself, `orders.service.place`): redeeming a
coupon, creating an API key, canceling an order.

The first request with a key records it in the same transaction as its work, with the
request's fingerprint, and then its answer; a repeat with the same request gets that answer
again (`Idempotent-Replayed: true`), a repeat with another request is 409
`idempotency_conflict`. A concurrent repeat waits for the first to finish (the key's row is
written first, and its unique index makes the second insert wait). A refused request rolls back
with its transaction and leaves the key unused, as an order's does. Keys are scoped to the
account and the operation and kept 24 hours (`prune_replays`, in the mailer's housekeeping): the
guarantee an order's key also gives, and no longer, since a stored answer can go stale. The
answer of a new API key, which holds the key's secret, is stored sealed, and replayed only while
the key is active. Assigning a deposit address takes no key: it is idempotent by itself, and a
stored answer could name an address recycled since."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Generic, TypeVar

import sqlalchemy as sa
from fastapi import Header, Response
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import Field, SQLModel, col

from ordersvc.errors import Conflict, InvalidParams
from ordersvc.keyring import Keyring, Purpose, UnsealError
from ordersvc.timestamps import utc_column, utc_now

MAX_KEY_LENGTH = 255
REPLAYED_HEADER = "Idempotent-Replayed"
M = TypeVar("M", bound=BaseModel)


class InvalidIdempotencyKey(InvalidParams):
    code = "invalid_idempotency_key"
    message = "An idempotency key is 1 to 255 printable ASCII characters."


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    message = "This idempotency key was already used with different parameters."


def check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= ch <= "~" for ch in key):
        raise InvalidIdempotencyKey()


def fingerprint(**request: Any) -> bytes:
    """What a repeat of a key must match: the request's parameters, as JSON."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).digest()


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=MAX_KEY_LENGTH,
        description="Any unique string (a UUID is ideal). Retrying with the same key and request returns the "
        "first answer (with `Idempotent-Replayed: true`) without doing the work twice; the same key with another "
        "request is 409 `idempotency_conflict`. Keys belong to your account and this operation, and are kept at "
        "least 24 hours. A refused request leaves its key unused.",
    ),
]

REPLAYED_RESPONSE_HEADER = {
    REPLAYED_HEADER: {
        "description": "`true` when this answer replays an earlier request's (the same Idempotency-Key).",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


class RequestReplay(SQLModel, table=True):
    """A key of a REST operation other than placing an order (those are `IdempotencyKey`)."""

    __tablename__ = "request_replays"

    account_id: int = Field(
        sa_column=sa.Column(sa.BigInteger, sa.ForeignKey("accounts.id"), primary_key=True, autoincrement=False)
    )
    operation: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    key: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    fingerprint: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    status_code: int | None = Field(default=None, sa_column=sa.Column(sa.SmallInteger))
    # The answer's body as JSON; sealed (`Purpose.REPLAY`) when it holds a secret.
    body: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    created_at: datetime | None = Field(default=None, sa_column=utc_column())


@dataclass(frozen=True, slots=True)
class Keyed:
    """An operation's request with its Idempotency-Key, or without one (`key` None)."""

    account_id: int
    operation: str
    key: str | None
    fingerprint: bytes
    # Given: the answer is stored sealed (it holds a secret).
    sealed_with: Keyring | None = None


@dataclass(frozen=True, slots=True)
class Answer(Generic[M]):
    value: M
    status_code: int
    replayed: bool

    def render(self, response: Response) -> M:
        """The answer's status and replay header on the route's response; the body to return."""
        response.status_code = self.status_code
        if self.replayed:
            response.headers[REPLAYED_HEADER] = "true"
        return self.value


async def once(
    session: AsyncSession,
    keyed: Keyed,
    model: type[M],
    work: Callable[[], Awaitable[tuple[M, int]]],
    still_true: Callable[[M], Awaitable[bool]] | None = None,
) -> Answer[M]:
    """`work`'s answer (its model and status), or, for a key already used with this request,
    the answer it gave then, if `still_true` of it (else a conflict: the answer is stale)."""
    if keyed.key is None:
        value, status_code = await work()
        return Answer(value, status_code, replayed=False)
    check_key(keyed.key)
    where = {"account_id": keyed.account_id, "operation": keyed.operation, "key": keyed.key}
    inserted = await session.execute(
        pg_insert(RequestReplay)
        .values(**where, fingerprint=keyed.fingerprint)
        .on_conflict_do_nothing()
        .returning(sa.literal(1))
    )
    if inserted.first() is None:
        answer = _replay(await session.get_one(RequestReplay, where), keyed, model)
        if still_true is not None and not await still_true(answer.value):
            raise IdempotencyConflict("What this key's request made is gone since: use a new idempotency key.")
        return answer
    value, status_code = await work()
    body = value.model_dump_json()
    if keyed.sealed_with is not None:
        body = keyed.sealed_with.seal(Purpose.REPLAY, body.encode(), context=_context(keyed))
    await session.execute(sa.update(RequestReplay).filter_by(**where).values(status_code=status_code, body=body))
    return Answer(value, status_code, replayed=False)


@dataclass(frozen=True, slots=True)
class Reservation:
    """A key recorded for work that commits outside its transaction (`reserve`)."""

    answer: str | None  # the answer stored: replay it; None: do the work
    since: datetime  # when the key was recorded: the same for every request under this record


async def reserve(engine: AsyncEngine, keyed: Keyed) -> Reservation:
    """For work that commits in statements of its own, not in one transaction with its key (a
    mass order's orders): the key recorded and committed before the work starts. No answer: do
    the work (the key is new, or its first request did not finish, or one is running now; the
    work must then be idempotent itself, as a mass order's lines are, keyed by `since`); else the
    body of the answer stored. The key used with another request: IdempotencyConflict. Nothing
    is held while the work runs."""
    assert keyed.key is not None
    assert keyed.sealed_with is None
    check_key(keyed.key)
    where = {"account_id": keyed.account_id, "operation": keyed.operation, "key": keyed.key}
    async with AsyncSession(engine) as session, session.begin():
        inserted = await session.execute(
            pg_insert(RequestReplay)
            .values(**where, fingerprint=keyed.fingerprint)
            .on_conflict_do_nothing()
            .returning(col(RequestReplay.created_at))
        )
        created = inserted.scalar()
        if created is not None:
            return Reservation(None, created)
        found = await session.execute(
            sa.select(col(RequestReplay.fingerprint), col(RequestReplay.body), col(RequestReplay.created_at)).filter_by(
                **where
            )
        )
        row = found.first()
    if row is None:  # pruned (a day old) between the two statements: try again
        return await reserve(engine, keyed)
    fingerprint, body, since = row
    if fingerprint != keyed.fingerprint:
        raise IdempotencyConflict()
    assert since is not None  # NOT NULL
    return Reservation(None if body is None else str(body), since)


async def record(engine: AsyncEngine, keyed: Keyed, body: str) -> None:
    """The answer of work whose key `reserve` recorded; the first answer stays."""
    where = {"account_id": keyed.account_id, "operation": keyed.operation, "key": keyed.key}
    async with AsyncSession(engine) as session, session.begin():
        await session.execute(
            sa.update(RequestReplay)
            .filter_by(**where)
            .where(sa.column("body").is_(None))
            .values(status_code=200, body=body)
        )


def _replay(row: RequestReplay, keyed: Keyed, model: type[M]) -> Answer[M]:
    if row.fingerprint != keyed.fingerprint or row.body is None or row.status_code is None:
        raise IdempotencyConflict()
    body = row.body
    if keyed.sealed_with is not None:
        try:
            body = keyed.sealed_with.unseal(Purpose.REPLAY, body, context=_context(keyed)).plaintext.decode()
        except UnsealError:
            raise IdempotencyConflict("This answer can no longer be shown again: use a new idempotency key.") from None
    return Answer(model.model_validate_json(body), row.status_code, replayed=True)


def _context(keyed: Keyed) -> bytes:
    return f"{keyed.account_id}:{keyed.operation}:{keyed.key}".encode()


REPLAY_LIFETIME = timedelta(hours=24)
PRUNE_BATCH = 1000


async def prune_replays(session: AsyncSession, *, limit: int = PRUNE_BATCH) -> int:
    """Delete up to `limit` keys older than a day (their answers with them); how many. Called by
    the mailer's housekeeping each round, so the table holds about a day of keys."""
    stale = (
        sa.select(RequestReplay.account_id, RequestReplay.operation, RequestReplay.key)  # type: ignore[call-overload]
        .where(sa.column("created_at") < utc_now() - REPLAY_LIFETIME)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    deleted = await session.execute(
        sa.delete(RequestReplay).where(
            sa.tuple_(sa.column("account_id"), sa.column("operation"), sa.column("key")).in_(stale)
        )
    )
    return int(deleted.rowcount or 0)  # type: ignore[attr-defined]
