"""Numbered pages, oldest first, whose default is the LAST page (the legacy contract)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, TypeVarTuple, cast

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


# Pages past this one hold nothing whatever the total (ids and counters are BIGINT): a higher
# page is sent as this one, so that its offset stays a BIGINT too.
_HIGHEST_PAGE = 2**53


class NumberedList(Generic[T]):
    """An owner's rows by numbered pages, oldest first (the legacy lists): a page is ONE
    statement, so its count and its window are of one snapshot without a transaction, and the
    statement checks its owner too (an API key, `owner`): one round trip for the whole page.

    The count is the owner's counter of these rows (kept by the transactions that insert them:
    one row read, however long the history). The window is read from the (owner, id) index,
    newest first with a small offset for pages near the end (clients default to the last page),
    oldest first for pages near the start.

    The page's rows are read from `table` (its `row_id` and `row_owner` columns), `columns` of
    them; the items are `output`, of those rows (`r`): a column of another table is a scalar
    subquery there, looked up for the page's rows only (never for the rows an offset skips) and
    by its index whatever the plan (a join may be planned as a hash join over the whole other
    table). `counter` is the column of
    `accounts` that counts the owner's rows. `owner` is SQL for the owner's id, whose
    parameters come first (`owner_parameters` of them), then the page's: the page asked for
    (NULL: the last) and the page size. `item` makes an item of its `output` values."""

    def __init__(
        self,
        *,
        item: Callable[[Sequence[Any]], T],
        table: str,
        columns: Sequence[str],
        output: str,
        row_id: str,
        row_owner: str,
        counter: str,
        owner: str,
        owner_parameters: int,
    ) -> None:
        self._item = item
        inner = ", ".join(columns)
        page, per_page = f"${owner_parameters + 1}::bigint", f"${owner_parameters + 2}::bigint"
        # `owner_id >= o AND owner_id <= o`, not `=`: see `owned_by`.
        owned = f"{row_owner} >= w.owner AND {row_owner} <= w.owner"
        self.sql = f"""
WITH counted AS (
    SELECT accounts.id AS owner, accounts.{counter} AS total FROM accounts WHERE accounts.id = {owner}
), paged AS (
    SELECT owner, total, coalesce({page}, greatest(1, (total + {per_page} - 1) / {per_page})) AS page FROM counted
), sized AS (
    SELECT owner, total, page, (page - 1) * {per_page} AS skip,
           greatest(0, least({per_page}, total - (page - 1) * {per_page})) AS size
    FROM paged
), w AS (
    SELECT *, greatest(0, total - skip - size) AS skip_from_newest FROM sized
)
SELECT w.page, w.total, r.row_id, {output} FROM w LEFT JOIN LATERAL (
    (SELECT {row_id} AS row_id, {inner} FROM {table} WHERE {owned}
     ORDER BY {row_owner} DESC, {row_id} DESC
     LIMIT CASE WHEN w.skip_from_newest < w.skip THEN w.size ELSE 0 END OFFSET w.skip_from_newest)
    UNION ALL
    (SELECT {row_id} AS row_id, {inner} FROM {table} WHERE {owned}
     ORDER BY {row_owner}, {row_id}
     LIMIT CASE WHEN w.skip_from_newest < w.skip THEN 0 ELSE w.size END OFFSET w.skip)
) r ON true
ORDER BY r.row_id"""  # noqa: S608 (constant fragments, never a value)

    @staticmethod
    def arguments(request: PageRequest) -> tuple[int | None, int]:
        """The page's parameters, after the owner's."""
        page = None if request.page is None else min(request.page, _HIGHEST_PAGE)
        return page, request.per_page

    def page_of(self, rows: list[tuple[Any, ...]], request: PageRequest) -> NumberedPage[T] | None:
        """The statement's page; None when it found no owner (the key is not valid)."""
        if not rows:
            return None
        page, total = rows[0][0], rows[0][1]
        item = self._item
        items = [item(row[3:]) for row in rows if row[2] is not None]
        return NumberedPage(items=items, page=request.page or page, per_page=request.per_page, total=total)


# Cursor pagination (REST): newest first, cursors are rows the client has already seen.
DEFAULT_LIMIT = 20
MAX_ID = 2**63 - 1  # BIGINT


class InvalidCursor(InvalidParams):
    code = "invalid_cursor"
    message = "The pagination cursor does not name an item of this list."


# What a list operation can refuse: its limit and cursors.
LIST_ERRORS = (InvalidParams, InvalidCursor)


@dataclass(frozen=True, slots=True)
class CursorRequest:
    """`starting_after`: older items than this one; `ending_before`: newer items than this one
    (internal row ids for `fetch_cursor_page`, resolved by the domain from its public cursors;
    the cursors as the client sent them for a `CursorList`)."""

    limit: int = DEFAULT_LIMIT
    starting_after: int | str | None = None
    ending_before: int | str | None = None

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


class CursorList(Generic[*Ts]):
    """An owner's rows by cursor pages, newest first (REST), each page ONE statement that
    checks the owner (`owner`, as for `NumberedList`), finds the row the cursor names among the
    owner's, and reads the page from the (owner, id) index.

    `table`, `columns`, `output`, `row_id`, `row_owner` and `owner` as for a `NumberedList`.
    `cursor_row` is SQL for the id of the owner's row a cursor names, with `{owner}` and
    `{cursor}` for them; each filter is (a condition with `{}` for its value, the value's SQL
    type). `statement` gives a page's SQL and its parameters after the owner's
    (`owner_parameters`): the cursor if any, the page size, then the value of each filter given.

    A statement names only what its page uses: its direction, its cursor, its filters. One
    statement for all of them (`$n IS NULL OR ...` for each) would be planned anew at every call:
    a plan for the values of a call drops the unused parts and so always looks cheaper than the
    generic plan, and planning took twice as long as running the statement. With only the parts
    used (and the page size out of the planner's sight), the two plans are alike and each
    connection's prepared statement keeps the generic one (a handful of statements per list, made
    once each). A filter's value can still make the plan for it look cheaper: such a page may be
    planned at each call, as before."""

    def __init__(
        self,
        *,
        table: str,
        columns: Sequence[str],
        output: str,
        row_id: str,
        row_owner: str,
        cursor_row: str,
        cursor_type: str,
        owner: str,
        owner_parameters: int,
        filters: Sequence[tuple[str, str]] = (),
    ) -> None:
        self._table, self._inner, self._output = table, ", ".join(columns), output
        self._row_id, self._row_owner, self._cursor_row, self._cursor_type = row_id, row_owner, cursor_row, cursor_type
        self._owner, self._owner_parameters, self._filters = owner, owner_parameters, tuple(filters)
        self._statements: dict[tuple[bool, bool, tuple[bool, ...]], str] = {}

    def statement(self, request: CursorRequest, *filters: object) -> tuple[str, tuple[object, ...]]:
        """The page's SQL (made once per direction, cursor and set of filters given) and its
        parameters after the owner's: the cursor as the client sent it, if any, the page size,
        the values of the filters given (None: not filtered)."""
        cursor = request.starting_after if request.ending_before is None else request.ending_before
        newest_first = request.ending_before is None
        given = tuple(value is not None for value in filters)
        key = (cursor is not None, newest_first, given)
        sql = self._statements.get(key)
        if sql is None:
            sql = self._statements[key] = self._sql(*key)
        values = [value for value in filters if value is not None]
        return sql, ((cursor, request.limit, *values) if cursor is not None else (request.limit, *values))

    def _sql(self, has_cursor: bool, newest_first: bool, given: tuple[bool, ...]) -> str:
        n = self._owner_parameters
        if has_cursor:
            n += 1
            cursor_id = self._cursor_row.format(owner="o.owner", cursor=f"${n}::{self._cursor_type}")
        else:
            cursor_id = "NULL::bigint"
        n += 1
        # One extra row tells whether there is more. A sub-select: a plan for the values of a call
        # would know the size, and cost less than the generic plan, which cannot.
        window = f"(SELECT ${n}::integer + 1)"
        conditions = [f"{self._row_owner} >= w.owner AND {self._row_owner} <= w.owner"]  # see `owned_by`
        if has_cursor:  # an index condition: a page deep in a long history starts at its cursor
            conditions.append(f"{self._row_id} {'<' if newest_first else '>'} w.cursor_id")
        for (condition, sql_type), is_given in zip(self._filters, given, strict=True):
            if is_given:
                n += 1
                conditions.append(condition.format(f"${n}::{sql_type}"))
        direction = " DESC" if newest_first else ""
        # MATERIALIZED: the owner and the cursor are found once, not once per reference.
        return f"""
WITH o AS MATERIALIZED (
    SELECT {self._owner} AS owner
), w AS MATERIALIZED (
    SELECT o.owner, {cursor_id} AS cursor_id FROM o
)
SELECT w.owner, w.cursor_id, r.row_id, {self._output} FROM w LEFT JOIN LATERAL (
    SELECT {self._row_id} AS row_id, {self._inner} FROM {self._table}
    WHERE {" AND ".join(conditions)}
    ORDER BY {self._row_owner}{direction}, {self._row_id}{direction} LIMIT {window}
) r ON true
ORDER BY r.row_id DESC"""  # noqa: S608 (constant fragments, never a value)

    @staticmethod
    def page_of(rows: list[tuple[Any, ...]], request: CursorRequest) -> CursorPage[tuple[*Ts]] | None:
        """The statement's page, newest first; None when it found no owner (the key is not
        valid). InvalidCursor when the cursor names no row of the owner's."""
        owner, cursor_id = rows[0][:2]
        if owner is None:
            return None
        if (request.starting_after is not None or request.ending_before is not None) and cursor_id is None:
            raise InvalidCursor()
        found = [cast("tuple[*Ts]", row[3:]) for row in rows if row[2] is not None]
        has_more = len(found) > request.limit
        # Newer than `ending_before`: the rows nearest it, the extra one is the newest.
        items = (
            found[len(found) - request.limit :]
            if has_more and request.ending_before is not None
            else found[: request.limit]
        )
        return CursorPage(items=items, has_more=has_more)


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


async def stream_by_id(
    session: AsyncSession, stmt: sa.Select[*tuple[Any, ...]], id_column: Any, *, chunk: int = 500
) -> AsyncIterator[Any]:
    """Every row of `stmt`, newest first, read in chunks by id: an export never holds the whole
    list in memory, and each chunk starts from its index. The first column is an entity with an
    `id`, or the id itself (a statement of plain columns, which the driver's rows carry without
    building an entity for each: about twice as fast for a long export). Yields the first column
    alone for a one-column statement, else the row."""
    last: int | None = None
    single = len(stmt.column_descriptions) == 1
    while True:
        page = stmt.order_by(id_column.desc()).limit(chunk)
        if last is not None:
            page = page.where(id_column < last)
        rows = list((await session.execute(page)).all())
        for row in rows:
            yield row[0] if single else row
        if len(rows) < chunk:
            return
        first = rows[-1][0]
        last = first if type(first) is int else first.id
