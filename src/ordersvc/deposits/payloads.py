"""Processor payloads parsed from JSON with their nesting bounded before anything recursive runs.

`json.loads`, `json.dumps`, the NOWPayments canonical form and `clean_payload` all recurse once
per level: a 1 KB body nested 900 deep passes `json.loads` and then raises `RecursionError` in
the next of them (a 500 with a 150 KB traceback, before NOWPayments' signature is even checked).
No processor nests deeper than a handful of levels, so the depth is counted on the raw bytes
first, without recursion, and a deeper body is refused."""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 32
# Escapes go first, then strings: two linear passes. One pattern for "a string with escapes in
# it" backtracks: each quote of an unterminated run of `\"` rescans to the end (quadratic).
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# Opening brackets -> 1, closing ones -> 255 (-1 as a signed byte).
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def nesting_depth(body: bytes) -> int:
    """How deep the body's arrays and objects nest (brackets inside strings do not count).
    Linear in the body's length; a malformed body gets some number, and fails parsing later."""
    steps = _STRING.sub(b"", _ESCAPE.sub(b"", body)).translate(_STEPS, _NOT_BRACKETS)
    # The running sum of +1/-1 steps is the depth at each bracket (in C, not a Python loop).
    return max(accumulate(memoryview(steps).cast("b")), default=0)


def load_json(body: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The body's JSON value, nested at most `max_depth` deep; ValueError for anything else."""
    # Fewer brackets than the limit cannot nest deeper than it: the common case skips the scan.
    if body.count(b"[") + body.count(b"{") > max_depth and nesting_depth(body) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(body)
    except RecursionError:  # cannot happen within the limit; kept so that nothing here raises it
        raise ValueError("JSON nested too deep") from None


def load_json_object(body: bytes, *, max_depth: int = MAX_DEPTH) -> dict[str, Any] | None:
    """The body as a JSON object nested at most `max_depth` deep; None for anything else."""
    try:
        payload = load_json(body, max_depth=max_depth)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None
