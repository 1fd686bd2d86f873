"""The database functions' source: one file per function, next to the domain whose rule it is
(`<domain>/sql/<function>.sql`). A migration installs the copies it froze of these files
(`install`), and a test checks that the database runs exactly this source: a change to a file
comes with a migration that installs a copy of the new version.

A function's file holds one `CREATE OR REPLACE FUNCTION` statement, its comment first."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_ROOT = Path(__file__).resolve().parent

# In the order they are installed: a plain SQL function is checked against what exists when it
# is created (PL/pgSQL bodies only when they run).
FILES = (
    "consent/sql/ordersvc_mailbox_key.sql",
    "accounts/sql/ordersvc_caller_account.sql",
    "ledger/sql/ordersvc_post_payments.sql",
    "events/sql/ordersvc_emit_order_events.sql",
    "events/sql/ordersvc_emit_order_progress.sql",
    "orders/sql/ordersvc_order_refund.sql",
    "orders/sql/ordersvc_end_order.sql",
    "consent/sql/ordersvc_expire_consent.sql",
    "consent/sql/ordersvc_ask_consents.sql",
    "orders/sql/ordersvc_place_orders.sql",
)

_BODY = re.compile(r"\$\$(.*?)\$\$", re.DOTALL)
_SETTING = re.compile(r"\bSET\s+(\w+)\s*=\s*(\w+)")


@dataclass(frozen=True, slots=True)
class DatabaseFunction:
    name: str
    path: Path

    @property
    def source(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def body(self) -> str:
        """What PostgreSQL keeps as the function's source (`pg_proc.prosrc`)."""
        match = _BODY.search(self.source)
        if match is None:
            raise ValueError(f"{self.path} has no $$-quoted body")
        return match.group(1)

    @property
    def settings(self) -> list[str]:
        """The settings the function runs with (`SET name = value` before its body), as
        PostgreSQL keeps them (`pg_proc.proconfig`)."""
        head = self.source.split("$$", 1)[0]
        return [f"{name}={value}" for name, value in _SETTING.findall(head)]


FUNCTIONS = tuple(DatabaseFunction(Path(f).stem, _ROOT / f) for f in FILES)


def install(execute: Callable[[str], object], frozen: Path | None = None) -> None:
    """Create or replace every function, with `execute` (Alembic's `op.execute`, say): from these
    files, or those a migration froze a copy of (`frozen`, one file per function, named as here),
    from its copies: functions added later are not among them."""
    for function in FUNCTIONS:
        path = function.path if frozen is None else frozen / function.path.name
        if frozen is None or path.exists():
            execute(path.read_text(encoding="utf-8"))
