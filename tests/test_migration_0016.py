"""Migration 0016 on a database of its own: five functions get generic plans, a downgrade gives
back what 0015 installed exactly, and an upgrade again."""

from __future__ import annotations

from tests.test_migration_0012 import migrate, scratch_database
from tests.test_migration_0015 import AT_0014, as_of, installed

__all__ = ["scratch_database"]  # the fixture

BEFORE, REVISION = "0015_plans_any_statistics", "0016_generic_plans"
CHANGED = (
    "ordersvc_post_payments",
    "ordersvc_end_order",
    "ordersvc_expire_consent",
    "ordersvc_ask_consents",
    "ordersvc_place_orders",
)
AT_0015 = {"ordersvc_place_orders": "0015_functions", "ordersvc_ask_consents": "0015_functions"}


def test_up_down_and_up_again(scratch_database: str) -> None:
    url = scratch_database
    migrate(url, REVISION)
    now = installed(url)
    for name in CHANGED:
        assert now[name] == as_of(dict.fromkeys(CHANGED, "0016_functions"), name)
        assert "plan_cache_mode=force_generic_plan" in (now[name][1] or [])
    assert now["ordersvc_place_orders"][1] == ["enable_seqscan=off", "plan_cache_mode=force_generic_plan"]
    # The others are as 0014 froze them; the files match what the head installs.
    assert sorted(now) == AT_0014
    for name in AT_0014:
        if name not in CHANGED:
            assert now[name] == as_of({}, name)

    migrate(url, BEFORE, down=True)
    back = installed(url)
    for name in CHANGED:
        assert back[name] == as_of(AT_0015, name)
        assert "plan_cache_mode=force_generic_plan" not in (back[name][1] or [])

    migrate(url, REVISION)
    assert installed(url) == now
