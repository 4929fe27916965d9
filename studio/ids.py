"""Parsing numbers that come from users (ids, cursors) without ever raising.

One parser for every id the studio reads from a path, a form or a query string.
`str.isdigit()` accepts "²" and other digits `int()` refuses; `int()` accepts fullwidth
digits, " 12", "+12" and "1_2"; and a number past the database's 64-bit column raises in the
driver (SQLite's OverflowError): all of these turned odd input into 500s. Here only ASCII
digits within bounds are a number.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.http import url_has_allowed_host_and_scheme

MAX_ID = 2**63 - 1  # the largest value of a signed 64-bit integer column
MAX_DIGITS = len(str(MAX_ID))


def parse_int(
    value: Any, *, max_digits: int = MAX_DIGITS, max_value: int = MAX_ID, signed: bool = False
) -> int | None:
    """Return `value` as a non-negative (or, with `signed`, any) integer written in ASCII
    digits within ±`max_value`, or None when it is anything else (floats, exponents, hex,
    signs, spaces inside, non-ASCII digits, NaN)."""
    text = str(value).strip() if value is not None else ""
    body = text[1:] if signed and text.startswith("-") else text
    if not body or len(body) > max_digits or not (body.isascii() and body.isdecimal()):
        return None
    number = int(text)
    return number if abs(number) <= max_value else None


def parse_id(value: Any) -> int | None:
    """Return a database id (a positive 64-bit integer) from user input, or None."""
    number = parse_int(value)
    return number if number is not None and number > 0 else None


class IdConverter:
    """The `<id:pk>` path converter: a malformed or out-of-range id does not match (a 404)."""

    regex = f"[0-9]{{1,{MAX_DIGITS}}}"

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise ValueError(value)  # the URL resolver treats this as no match
        return number

    def to_url(self, value: Any) -> str:
        return str(int(value))


class IdChoicesMixin:
    """For model choice fields: every submitted id goes through `parse_id` before a query, so
    a huge or non-ASCII id is a form error ("Select a valid choice") rather than a 500."""

    def _parsed(self, value: Any) -> int:
        number = parse_id(value)
        if number is None:
            raise ValidationError(
                self.error_messages["invalid_choice"],  # type: ignore[attr-defined]
                code="invalid_choice",
                params={"value": value},
            )
        return number

    def to_python(self, value: Any) -> Any:
        if value in self.empty_values:  # type: ignore[attr-defined]
            return None
        return super().to_python(self._parsed(value))  # type: ignore[misc]

    def _check_values(self, value: Any) -> Any:
        try:
            values = [self._parsed(v) for v in value]
        except TypeError as exc:  # not a list of values
            raise ValidationError(
                self.error_messages["invalid_list"],  # type: ignore[attr-defined]
                code="invalid_list",
            ) from exc
        return super()._check_values(values)  # type: ignore[misc]


class IdChoiceField(IdChoicesMixin, forms.ModelChoiceField):
    """A ModelChoiceField that parses its id safely."""


class IdMultipleChoiceField(IdChoicesMixin, forms.ModelMultipleChoiceField):
    """A ModelMultipleChoiceField that parses its ids safely."""


def safe_next(request: Any, fallback: str) -> str:
    """Return the `next` target of a POST (or GET) when it is a path on this site, else
    `fallback`: never another host, scheme-relative URL, backslash trick or control character."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if (
        target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and target.isprintable()
        and url_has_allowed_host_and_scheme(
            target, {request.get_host()}, require_https=request.is_secure()
        )
    ):
        return target
    return fallback
