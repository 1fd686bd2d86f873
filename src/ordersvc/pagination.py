"""Numbered pages, oldest first, whose default is the LAST page (the legacy contract)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, TypeVarTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped

from ordersvc.errors import InvalidParams

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 100


@dataclass(frozen=True, slots=True)
class PageRequest:
    page: int | None = None  # None: the last page
    per_page: int = DEFAULT_PER_PAGE

    def __post_init__(self) -> None:
        if not 1 <= self.per_page <= MAX_PER_PAGE or (self.page is not None and self.page < 1):
            raise InvalidParams()


@dataclass(frozen=True, slots=True)
class PageWindow:
    """Where a page sits in `total` items ordered oldest first."""

    page: int
    per_page: int
    total: int
    # The highest id counted in `total`. Rows are fetched up to it, so a row committed between
    # counting and fetching cannot shift the window (an account's rows get increasing ids in
    # commit order: each is inserted under that account's row lock).
    last_id: int | None = None

    @classmethod
    def resolve(cls, request: PageRequest, total: int, last_id: int | None) -> PageWindow:
        last_page = max(1, -(-total // request.per_page))
        return cls(page=request.page or last_page, per_page=request.per_page, total=total, last_id=last_id)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def size(self) -> int:
        """Number of items on this page (0 past the end)."""
        return max(0, min(self.per_page, self.total - self.offset))

    @property
    def offset_from_newest(self) -> int:
        """Offset of this page's newest item when counting from the newest item backwards.

        Clients default to the last page, so pages near the end are read newest-first with a
        small offset instead of skipping over the whole history."""
        return max(0, self.total - self.offset - self.size)

    @property
    def read_backwards(self) -> bool:
        return self.offset_from_newest < self.offset


@dataclass(frozen=True, slots=True)
class NumberedPage(Generic[T]):
    items: Sequence[T]
    page: int
    per_page: int
    total: int


def owned_by(owner_column: Mapped[int], owner: int) -> sa.ColumnElement[bool]:
    """`owner_column = owner`, written as a range on purpose, for lists ordered by
    `owned_order(...)`. With an equality PostgreSQL treats the owner as a constant and may serve
    `ORDER BY id` from the primary key, skipping every newer row of other owners: a big
    account's newest page or a small account's oldest row took 10-200 ms in bench/load.py,
    growing with everyone else's history. Pinned by a range, the only index that yields
    (owner, id) order is the (owner, id) index, whatever the statistics or the plan cache say."""
    return sa.and_(owner_column >= owner, owner_column <= owner)


def owned_order(owner_column: Mapped[int] | None, id_column: Mapped[int | None], *, newest_first: bool) -> list[Any]:
    columns = [c for c in (owner_column, id_column) if c is not None]
    return [c.desc() if newest_first else c.asc() for c in columns]


async def fetch_window(
    session: AsyncSession,
    stmt: sa.Select[*Ts],
    id_column: Mapped[int | None],
    window: PageWindow,
    *,
    owner_column: Mapped[int] | None = None,
) -> list[sa.Row[*Ts]]:
    """Run `stmt` (already filtered, with `owned_by` when `owner_column` is given) for the rows
    of `window`, ordered by `id_column` ascending."""
    if window.size == 0 or window.last_id is None:
        return []
    stmt = stmt.where(id_column <= window.last_id).limit(window.size)
    if window.read_backwards:
        newest = stmt.order_by(*owned_order(owner_column, id_column, newest_first=True))
        rows = (await session.execute(newest.offset(window.offset_from_newest))).all()
        return list(reversed(rows))
    oldest = stmt.order_by(*owned_order(owner_column, id_column, newest_first=False))
    return list((await session.execute(oldest.offset(window.offset))).all())


async def counted_up_to_now(
    session: AsyncSession,
    counter: Mapped[int],
    owner_id: Mapped[int | None],
    id_column: Mapped[int | None],
    owner_column: Mapped[int],
    owner: int,
) -> tuple[int, int | None]:
    """(the owner's counter of these rows, highest id of its rows), in one statement, so from
    one snapshot: the counter is kept by the same transactions that insert the rows. The count
    costs one row read and the highest id one index probe, however long the history."""
    highest = (
        sa.select(id_column)
        .where(owned_by(owner_column, owner))
        .order_by(*owned_order(owner_column, id_column, newest_first=True))
        .limit(1)
        .scalar_subquery()
    )
    row = (await session.execute(sa.select(counter, highest).where(owner_id == owner))).one_or_none()
    if row is None:
        return 0, None
    return int(row[0]), row[1]


# Cursor pagination (REST): newest first, cursors are rows the client has already seen.
DEFAULT_LIMIT = 20
MAX_ID = 2**63 - 1  # BIGINT


class InvalidCursor(InvalidParams):
    code = "invalid_cursor"
    message = "The pagination cursor does not name an item of this list."


@dataclass(frozen=True, slots=True)
class CursorRequest:
    """`starting_after`: older items than this id; `ending_before`: newer items than this id
    (ids here are internal row ids, resolved by the domain from its public cursors)."""

    limit: int = DEFAULT_LIMIT
    starting_after: int | None = None
    ending_before: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PER_PAGE:
            raise InvalidParams(f"limit must be between 1 and {MAX_PER_PAGE}.")
        self.check_one_direction(self.starting_after, self.ending_before)

    @staticmethod
    def check_one_direction(starting_after: object, ending_before: object) -> None:
        """Checked before any cursor is looked up, so the answer does not depend on whether
        the cursors exist."""
        if starting_after is not None and ending_before is not None:
            raise InvalidParams("Use starting_after or ending_before, not both.")


@dataclass(frozen=True, slots=True)
class CursorPage(Generic[T]):
    items: Sequence[T]  # newest first
    has_more: bool  # more items exist beyond this page in the direction of travel


async def fetch_cursor_page(
    session: AsyncSession,
    stmt: sa.Select[*Ts],
    id_column: Mapped[int | None],
    request: CursorRequest,
    *,
    owner_column: Mapped[int] | None = None,
) -> tuple[list[sa.Row[*Ts]], bool]:
    """The page of `stmt` (already filtered, with `owned_by` when `owner_column` is given) for
    `request`, newest first, and `has_more`."""
    window = request.limit + 1  # one extra row tells whether there is more
    if request.ending_before is not None:
        stmt = stmt.where(id_column > request.ending_before)
        stmt = stmt.order_by(*owned_order(owner_column, id_column, newest_first=False)).limit(window)
        rows = list((await session.execute(stmt)).all())
        return list(reversed(rows[: request.limit])), len(rows) > request.limit
    if request.starting_after is not None:
        stmt = stmt.where(id_column < request.starting_after)
    newest = stmt.order_by(*owned_order(owner_column, id_column, newest_first=True)).limit(window)
    rows = list((await session.execute(newest)).all())
    return rows[: request.limit], len(rows) > request.limit
