from django.contrib import admin

from .models import Job, JobEvent, Output


class JobEventInline(admin.TabularInline):
    model = JobEvent
    extra = 0
    readonly_fields = ["created_at", "source", "status", "message"]
    can_delete = False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["pk", "team", "endpoint", "status", "provider_job_id", "created_at"]
    list_filter = ["status", "endpoint", "team"]
    search_fields = ["provider_job_id"]
    readonly_fields = ["webhook_token_hash", "payload", "status_body"]
    inlines = [JobEventInline]


@admin.register(Output)
class OutputAdmin(admin.ModelAdmin):
    list_display = ["pk", "job", "kind", "mime_type", "size_bytes", "created_at"]
    list_filter = ["kind"]
