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


def owned_by(owner_column: Mapped[int], owner: int | sa.BindParameter[int]) -> sa.ColumnElement[bool]:
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


OWNER = sa.bindparam("owner", type_=sa.BigInteger())
"""The owner of a `NumberedList`'s rows, bound when it runs."""


class NumberedList(Generic[*Ts]):
    """An owner's rows by numbered pages, oldest first (the legacy lists), with its statements
    built once: a page is two statements whose construction used to cost as much Python as
    running them (a fifth of a legacy page in bench/load.py's profile).

    `rows` selects the columns and is filtered with `owned_by(owner_column, OWNER)`."""

    def __init__(
        self,
        rows: sa.Select[*Ts],
        *,
        id_column: Mapped[int | None],
        owner_column: Mapped[int],
        counter: Mapped[int],
        owner_id: Mapped[int | None],
    ) -> None:
        # (the owner's counter of these rows, highest id of its rows), in one statement, so from
        # one snapshot: the counter is kept by the same transactions that insert the rows. The
        # count costs one row read and the highest id one index probe, however long the history.
        highest = (
            sa.select(id_column)
            .where(owned_by(owner_column, OWNER))
            .order_by(*owned_order(owner_column, id_column, newest_first=True))
            .limit(1)
            .scalar_subquery()
        )
        self._count = sa.select(counter, highest).where(owner_id == OWNER)
        # `id + 0`: the bound is a filter, never an index condition. As `id <= :last_id` it let
        # the planner read the primary key up to the bound and sort, skipping the (owner, id)
        # index: an account whose rows have the oldest ids (bench/load.py's big account) read
        # every row of its history below the bound for one page (1.1 ms for 1,000 rows, 0.3 ms
        # with the filter). Rows above the bound are the few committed since the count.
        bounded = (
            rows.where(id_column + sa.literal_column("0") <= sa.bindparam("last_id", type_=sa.BigInteger()))
            .limit(sa.bindparam("size", type_=sa.Integer()))
            .offset(sa.bindparam("skip", type_=sa.BigInteger()))
        )
        self._newest_first = bounded.order_by(*owned_order(owner_column, id_column, newest_first=True))
        self._oldest_first = bounded.order_by(*owned_order(owner_column, id_column, newest_first=False))

    async def count(self, session: AsyncSession, owner: int) -> tuple[int, int | None]:
        """(number of the owner's rows, highest id among them), as of one snapshot."""
        row = (await session.execute(self._count, {"owner": owner})).one_or_none()
        if row is None:
            return 0, None
        return int(row[0]), row[1]

    async def window(self, session: AsyncSession, owner: int, window: PageWindow) -> list[sa.Row[*Ts]]:
        """The rows of `window`, oldest first."""
        if window.size == 0 or window.last_id is None:
            return []
        params = {"owner": owner, "last_id": window.last_id, "size": window.size}
        if window.read_backwards:
            newest = await session.execute(self._newest_first, {**params, "skip": window.offset_from_newest})
            return list(reversed(newest.all()))
        return list((await session.execute(self._oldest_first, {**params, "skip": window.offset})).all())


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
