"""The dashboard restates no rule of the API: the quantity range comes from the OpenAPI document
(`OrderCreate.quantity`'s minimum and maximum, read by web/vite.config.ts at build time), and
whether an order can be canceled from its own `cancelable` field."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ordersvc.config import Settings
from ordersvc.main import create_app

WEB = Path(__file__).resolve().parents[2] / "web"
GENERATED = {WEB / "src" / "api" / "schema.d.ts"}


def sources() -> dict[str, str]:
    files = [p for p in sorted((WEB / "src").rglob("*.ts")) if p not in GENERATED] + [WEB / "vite.config.ts"]
    return {str(p.relative_to(WEB)): p.read_text(encoding="utf-8") for p in files}


def spellings(n: int) -> set[str]:
    """How a number can be written in TypeScript: 50000, 50_000, 5e4 (and 50,000 in text)."""
    digits = str(n).rstrip("0")
    return {str(n), f"{n:_}", f"{n:,}", f"{digits}e{len(str(n)) - len(digits)}"}


def bounds_pattern(minimum: int, maximum: int) -> re.Pattern[str]:
    words = sorted(spellings(minimum) | spellings(maximum), key=len, reverse=True)
    return re.compile(r"(?<![\w.])(" + "|".join(re.escape(w) for w in words) + r")(?!\w)")


class TestNoRestatedRules:
    def test_the_source_has_no_quantity_bound(self) -> None:
        quantity = create_app(Settings()).openapi()["components"]["schemas"]["OrderCreate"]["properties"]["quantity"]
        pattern = bounds_pattern(int(quantity["minimum"]), int(quantity["maximum"]))
        found = {name: pattern.findall(text) for name, text in sources().items() if pattern.search(text)}
        assert found == {}

    def test_the_build_reads_the_range_from_the_openapi_snapshot(self) -> None:
        config = (WEB / "vite.config.ts").read_text(encoding="utf-8")
        assert 'import openapi from "./openapi.json"' in config
        assert "openapi.components.schemas.OrderCreate.properties.quantity" in config
        snapshot = json.loads((WEB / "openapi.json").read_text(encoding="utf-8"))
        quantity = snapshot["components"]["schemas"]["OrderCreate"]["properties"]["quantity"]
        assert isinstance(quantity["minimum"], int | float)
        assert isinstance(quantity["maximum"], int | float)

    def test_no_list_of_cancelable_statuses(self) -> None:
        """The cancel button follows `order.cancelable`; no source names statuses as cancelable."""
        text = sources()
        assert re.search(r"\bo\.cancelable\b", text["src/views/orders.ts"])
        for name, source in text.items():
            assert not re.search(r"CANCELABLE|OrderStatus\[\]", source), name
