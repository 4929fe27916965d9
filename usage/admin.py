"""Admin: usage rows, read-only (`manage.py usage_rebuild` recomputes them from the jobs)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import BalancePoint, UsageDay


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(UsageDay)
class UsageDayAdmin(ReadOnly):
    list_display = ["day", "team", "endpoint", "user", "profile", "jobs", "approved", "cost_usd"]
    list_filter = ["team", "endpoint"]
    date_hierarchy = "day"


@admin.register(BalancePoint)
class BalancePointAdmin(ReadOnly):
    list_display = ["day", "team", "provider", "balance_usd", "seen_at"]
    list_filter = ["team", "provider"]
