"""Parsing numbers that come from users (ids, cursors) without ever raising.

`str.isdigit()` accepts "²" and other digits `int()` refuses, and `int()` refuses digit
strings longer than 4,300 characters: both turned odd query strings into 500s.
"""

from __future__ import annotations

from typing import Any

MAX_DIGITS = 18  # fits a 64-bit signed integer column


def parse_int(value: Any, *, max_digits: int = MAX_DIGITS, signed: bool = False) -> int | None:
    """Return `value` as a non-negative (or, with `signed`, any) integer written in ASCII
    digits, or None when it is anything else."""
    text = str(value).strip() if value is not None else ""
    body = text[1:] if signed and text.startswith("-") else text
    if not body or len(body) > max_digits or not (body.isascii() and body.isdecimal()):
        return None
    return int(text)


def parse_id(value: Any) -> int | None:
    """Return a database id (a positive integer) from user input, or None."""
    number = parse_int(value)
    return number if number is not None and number > 0 else None
