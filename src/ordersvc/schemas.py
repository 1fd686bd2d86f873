"""Types shared by the REST schemas."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

MoneyStr = Annotated[
    str,
    Field(
        pattern=r"^-?[0-9]+\.[0-9]{2,3}$",
        description='An exact USD amount as a decimal string with 2 or 3 decimals (`"125.50"`, `"1.234"`). '
        "A string, so that no client parses money as a float.",
        examples=["125.50"],
    ),
]
Currency = Literal["USD"]
