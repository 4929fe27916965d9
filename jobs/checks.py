"""System checks on the catalog and provider configuration (ids jobs.E00x)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register

from . import catalog


@register(Tags.compatibility)
def check_catalog(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Check that every catalog entry is coherent and that its examples behave as declared."""
    errors: list[Error] = []
    for name, count in Counter(e.key for e in catalog.ENDPOINTS).items():
        if count > 1:
            errors.append(Error(f"Endpoint key {name!r} is used {count} times.", id="jobs.E001"))
    paths = Counter((e.provider, e.path) for e in catalog.ENDPOINTS)
    for (provider, path), count in paths.items():
        if count > 1:
            errors.append(Error(f"{provider} path {path} appears {count} times.", id="jobs.E002"))
    for endpoint in catalog.ENDPOINTS:
        where = f"catalog entry {endpoint.key!r}"
        names = [f.name for f in endpoint.fields]
        if len(names) != len(set(names)):
            errors.append(Error(f"{where} repeats a field name.", id="jobs.E003"))
        for spec in endpoint.fields:
            if spec.kind is catalog.Kind.CHOICE and not spec.choices:
                errors.append(Error(f"{where}: {spec.name} has no choices.", id="jobs.E004"))
            if spec.min is not None and spec.max is not None and spec.min > spec.max:
                errors.append(Error(f"{where}: {spec.name} has min > max.", id="jobs.E005"))
        if not endpoint.example:
            errors.append(Error(f"{where} has no example.", id="jobs.E006"))
        elif problems := endpoint.validate(endpoint.example):
            errors.append(Error(f"{where}: its example is invalid: {problems}", id="jobs.E007"))
        name, value = endpoint.invalid_example
        if name not in endpoint.field_map:
            errors.append(Error(f"{where} has no invalid example.", id="jobs.E008"))
        elif not endpoint.validate({**endpoint.example, name: value}).get(name):
            errors.append(
                Error(f"{where}: its invalid example {name}={value!r} passes.", id="jobs.E009")
            )
    return errors


@register(Tags.compatibility)
def check_providers(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Check that each provider either has an API key or can fall back to the sandbox."""
    errors = []
    keys = {
        catalog.Provider.IMAGEPIPELINE: settings.IMAGEPIPELINE_API_KEY,
        catalog.Provider.IMAGINEPRO: settings.IMAGINEPRO_API_KEY,
    }
    for provider, key in keys.items():
        if not key and not settings.SANDBOX_ENABLED:
            errors.append(
                Error(
                    f"No API key for {provider.value} and the sandbox is off.",
                    hint=f"Set {provider.value.upper()}_API_KEY, or SANDBOX_ENABLED=true.",
                    id="jobs.E010",
                )
            )
    return errors
