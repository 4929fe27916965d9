from django.contrib import admin

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
    list_display = ["id", "endpoint", "outcome", "created_at", "webhook_attempts"]
    list_filter = ["endpoint", "outcome"]


@admin.register(SandboxProfile)
class SandboxProfileAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "created_at", "updated_at"]
    search_fields = ["id", "name"]
