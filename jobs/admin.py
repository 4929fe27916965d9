"""Admin for operators: jobs and outputs, read-only (state changes go through the services).

The callback token's hash is left out; the payload shows what was sent, secrets masked."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import Job, JobEvent, Output


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class JobEventInline(admin.TabularInline):
    model = JobEvent
    extra = 0
    fields = ["created_at", "source", "status", "message"]
    readonly_fields = fields
    can_delete = False


@admin.register(Job)
class JobAdmin(ReadOnly):
    list_display = [
        "pk",
        "team",
        "endpoint",
        "status",
        "created_by",
        "cost_usd",
        "provider_job_id",
        "created_at",
    ]
    list_filter = ["status", "provider", "endpoint", "team"]
    search_fields = ["provider_job_id", "=id"]
    list_select_related = ["team", "created_by"]
    exclude = ["webhook_token_hash"]
    inlines = [JobEventInline]


@admin.register(Output)
class OutputAdmin(ReadOnly):
    list_display = ["pk", "job", "team", "kind", "mime_type", "size_bytes", "created_at"]
    list_filter = ["kind", "team"]
    list_select_related = ["job", "team"]
