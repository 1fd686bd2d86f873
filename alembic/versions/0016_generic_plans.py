"""The service's functions plan their statements once per connection, not at each call.

`ordersvc_place_orders`, `ordersvc_ask_consents`, `ordersvc_expire_consent`, `ordersvc_end_order`
and `ordersvc_post_payments` run with `plan_cache_mode = force_generic_plan` (a setting of each
function, so also of the functions they call). Every statement in them takes parameters (the
function's arguments and variables), and PostgreSQL's default (`auto`) plans such a statement
anew for the values of each call whenever the plan for those values looks cheaper than the
generic one: it did, at every call, for most of the order statement's thirty statements and for
the ledger's balance move. Planning a batch's statements cost more than running them: a batch of
one order to a new recipient took 1.9 ms in the database, 1.1 ms with generic plans, a batch of
16 about 0.9 of what it took (bench/README.md). Each statement looks rows up by key through an
index, so the generic plan is the plan that any values would get.

The functions are installed from the copies in `0016_functions/`, frozen with this revision.
Safe for a rolling deploy: the same functions with the same arguments and results.

Revision ID: 0016_generic_plans
Revises: 0015_plans_any_statistics
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0016_generic_plans"
down_revision: str | None = "0015_plans_any_statistics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HERE = Path(__file__).parent
# In the order they are installed (a plain SQL function is checked when it is created).
FUNCTIONS = (
    "ordersvc_post_payments",
    "ordersvc_end_order",
    "ordersvc_expire_consent",
    "ordersvc_ask_consents",
    "ordersvc_place_orders",
)
# Before this revision: the latest frozen copy of each function.
BEFORE = {
    name: "0015_functions" if name in ("ordersvc_ask_consents", "ordersvc_place_orders") else "0014_functions"
    for name in FUNCTIONS
}


def upgrade() -> None:
    for name in FUNCTIONS:
        op.execute((HERE / "0016_functions" / f"{name}.sql").read_text(encoding="utf-8"))


def downgrade() -> None:
    # CREATE OR REPLACE drops the setting the older source does not name.
    for name in FUNCTIONS:
        op.execute((HERE / BEFORE[name] / f"{name}.sql").read_text(encoding="utf-8"))
