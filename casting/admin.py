"""Admin: read-only. Runs are started and re-run from their pages, through the services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import CastingEvent, CastingJob, CastingRun


class CastingJobInline(admin.TabularInline):
    model = CastingJob
    extra = 0
    fields = ["job", "profile", "seed", "created_at"]
    readonly_fields = fields
    can_delete = False


class CastingEventInline(admin.TabularInline):
    model = CastingEvent
    extra = 0
    fields = ["created_at", "action", "actor", "message"]
    readonly_fields = fields
    can_delete = False


@admin.register(CastingRun)
class CastingRunAdmin(admin.ModelAdmin):
    list_display = ["pk", "team", "endpoint", "prompt", "created_by", "created_at"]
    list_filter = ["team", "endpoint"]
    search_fields = ["prompt"]
    inlines = [CastingJobInline, CastingEventInline]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
