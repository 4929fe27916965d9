import json
from typing import Any

from django.contrib import admin

from studio.logging import redact

from .models import Knobs, SandboxJob, SandboxProfile


@admin.register(Knobs)
class KnobsAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "failure_rate",
        "fail_next",
        "pending_next",
        "cancel_next",
        "force_status",
        "force_count",
        "webhooks",
    ]


@admin.register(SandboxJob)
class SandboxJobAdmin(admin.ModelAdmin):
    """Sandbox jobs, read-only, their callback tokens redacted: a live job's callback URL is
    the only credential of its webhook, and staff need not hold it to look at the job."""

    list_display = ["id", "endpoint", "outcome", "created_at", "webhook_attempts"]
    list_filter = ["endpoint", "outcome"]
    exclude = ["body", "callback_url"]
    readonly_fields = ["request_body", "callback"]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    @admin.display(description="Request body")
    def request_body(self, obj: SandboxJob) -> str:
        return redact(json.dumps(obj.body, indent=2, ensure_ascii=False))

    @admin.display(description="Callback URL")
    def callback(self, obj: SandboxJob) -> str:
        return redact(obj.callback_url)


@admin.register(SandboxProfile)
class SandboxProfileAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "created_at", "updated_at"]
    search_fields = ["id", "name"]
