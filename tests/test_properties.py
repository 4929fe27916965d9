"""Property-based tests (hypothesis) on the catalog's validation and the job state machine."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jobs import catalog
from jobs.catalog import Field, Kind
from jobs.models import Job

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
ENDPOINTS = st.sampled_from(catalog.ENDPOINTS)
NUMERIC = [
    (e, f)
    for e in catalog.ENDPOINTS
    for f in e.fields
    if f.kind in (Kind.INTEGER, Kind.NUMBER) and (f.min is not None or f.max is not None)
]


@settings(max_examples=300, deadline=None)
@given(endpoint=ENDPOINTS, body=st.dictionaries(st.text(max_size=20), JSON_VALUES, max_size=8))
def test_validation_never_crashes_and_names_only_sent_fields(
    endpoint: catalog.Endpoint, body: dict[str, Any]
) -> None:
    errors = endpoint.validate(body)
    required = {f.name for f in endpoint.fields if f.required}
    assert set(errors) <= set(body) | required
    assert all(isinstance(m, str) and m for messages in errors.values() for m in messages)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), pair=st.sampled_from(NUMERIC))
def test_numbers_inside_the_documented_bounds_pass_and_outside_fail(
    data: st.DataObject, pair: tuple[catalog.Endpoint, Field]
) -> None:
    _endpoint, spec = pair
    low = spec.min if spec.min is not None else -1e6
    high = spec.max if spec.max is not None else 1e6
    if spec.kind is Kind.INTEGER:
        inside = data.draw(st.integers(int(low), int(high)))
        if spec.multiple_of:
            inside -= inside % spec.multiple_of
            if inside < low:
                inside += spec.multiple_of
    else:
        inside = data.draw(st.floats(low, high, allow_nan=False))
    assert spec.errors_for(inside) == []
    outside = data.draw(
        st.one_of(
            *(
                [st.floats(max_value=low, exclude_max=True, allow_nan=False, allow_infinity=False)]
                if spec.min is not None
                else []
            ),
            *(
                [st.floats(min_value=high, exclude_min=True, allow_nan=False, allow_infinity=False)]
                if spec.max is not None
                else []
            ),
        )
    )
    if spec.kind is Kind.INTEGER:
        outside = int(outside) - 1 if outside < low else int(outside) + 1
    assert spec.errors_for(outside) != []


@settings(max_examples=200, deadline=None)
@given(palette=st.lists(st.from_regex(r"\A#[0-9A-Fa-f]{6}\Z"), min_size=1, max_size=5))
def test_hex_palettes_pass(palette: list[str]) -> None:
    spec = catalog.get("text-to-image").field_map["palette"]
    assert spec.errors_for(palette) == []


REPORTS = st.sampled_from(
    ["queued", "pending", "processing", "completed", "failed", "cancelled", "weird"]
)


@settings(max_examples=500, deadline=None)
@given(reports=st.lists(REPORTS, max_size=12))
def test_job_status_only_moves_forward_and_terminal_is_final(reports: list[str]) -> None:
    status = Job.Status.QUEUED
    for reported in reports:
        after = Job.next_status(status, reported)
        assert Job.RANK[after] >= Job.RANK[status]
        if status in Job.TERMINAL:
            assert after == status
        assert after != Job.Status.COMPLETED  # only a stored output completes a job
        status = after
