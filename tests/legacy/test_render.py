"""The legacy encoder writes what `json.dumps` writes (old clients compare bytes), plus money as
numbers with at least two decimals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from ordersvc.legacy.render import COMPACT, SPACED, Money, encode, wire_time

scalars = st.none() | st.booleans() | st.integers() | st.text()
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5), max_leaves=30
)


@settings(max_examples=300, derandomize=True)
@given(values, st.sampled_from([SPACED, COMPACT]))
def test_anything_without_money_is_written_as_json_dumps_writes_it(value: object, separators: tuple[str, str]) -> None:
    assert encode(value, separators) == json.dumps(value, separators=separators)  # type: ignore[arg-type]


def test_money_is_a_number_with_at_least_two_decimals() -> None:
    page = {"payments": [{"amount": Money(-10_000), "email": "zoë@example.com"}, {"amount": Money(1234)}], "total": 2}
    assert (
        encode(page)
        == '{"payments": [{"amount": -10.00, "email": "zo\\u00eb@example.com"}, {"amount": 1.234}], "total": 2}'
    )


@settings(max_examples=300, derandomize=True)
@given(
    st.datetimes(
        min_value=datetime(1000, 1, 2),  # strftime left years before 1000 unpadded; rows are stamped now()
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]),
    )
)
def test_wire_time_is_the_utc_time_to_the_second(moment: object) -> None:
    """`YYYY-MM-DD HH:MM:SS` in UTC, fractions dropped: what strftime wrote before the fast path."""
    assert isinstance(moment, datetime)
    assert wire_time(moment) == moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
