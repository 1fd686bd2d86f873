from __future__ import annotations

import pytest

from ordersvc.money import InvalidAmount, format_usd, parse_usd


@pytest.mark.parametrize(
    ("mills", "text"),
    [
        (125_500, "125.50"),
        (10_000, "10.00"),
        (1234, "1.234"),
        (-10_000, "-10.00"),
        (0, "0.00"),
        (1, "0.001"),
        (-1, "-0.001"),
        (100, "0.10"),
        (10, "0.01"),
        (123_456_789_012, "123456789.012"),
    ],
)
def test_format_usd(mills: int, text: str) -> None:
    assert format_usd(mills) == text


@pytest.mark.parametrize(
    ("text", "mills"), [("50", 50_000), ("50.5", 50_500), ("0.001", 1), (" 1.23 ", 1230), ("007", 7000)]
)
def test_parse_usd(text: str, mills: int) -> None:
    assert parse_usd(text) == mills


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "0.000",
        "-5",
        "+5",
        "1.2345",
        "1e3",
        "NaN",
        "inf",
        "abc",
        "1,5",
        ".5",
        "5.",
        "1000000001",
        "\u0661\u0662",
        "\uff11\uff12",
    ],
)
def test_parse_usd_refuses(text: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_usd(text)
