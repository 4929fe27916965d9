"""Reading a JSON request body that a stranger sent, without ever raising.

`json.loads` raises ValueError for bad bytes or syntax and RecursionError for deep nesting
(30,000 `[` fit in 64 KB); anything built from such a value later (storing it, rendering it)
would recurse too. Bodies nested deeper than `MAX_DEPTH` are refused before parsing. Python
also reads `NaN`, `Infinity` and `1e999` (an infinite float), which are not JSON and which a
database JSON column refuses: they are refused here too.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32


def nesting_depth(raw: bytes) -> int:
    """Return how deeply the arrays and objects of a JSON text nest (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def loads_object(raw: bytes, *, max_depth: int = MAX_DEPTH) -> dict[str, Any] | None:
    """Return the JSON object `raw` holds, or None for anything else: bytes that are not
    UTF-8 JSON, a value that is not an object, or nesting deeper than `max_depth`."""
    if nesting_depth(raw) > max_depth:
        return None
    try:
        value = json.loads(raw, parse_constant=_refuse, parse_float=_finite)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        return None
    return value if isinstance(value, dict) else None


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range")
    return number
