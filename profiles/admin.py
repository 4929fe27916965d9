"""Admin: a read-mostly view. Changes go through the pages (and so the services), which keep
versions and the provider's copy in step; the admin only looks."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import Profile, ProfileEvent, ProfileVersion


class ProfileVersionInline(admin.TabularInline):
    model = ProfileVersion
    extra = 0
    fields = ["number", "created_by", "created_at", "snapshot"]
    readonly_fields = fields
    can_delete = False


class ProfileEventInline(admin.TabularInline):
    model = ProfileEvent
    extra = 0
    fields = ["created_at", "action", "actor", "message"]
    readonly_fields = fields
    can_delete = False


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "version", "sync_state", "provider_profile_id", "archived_at"]
    list_filter = ["sync_state", "team"]
    search_fields = ["name", "description", "tags", "provider_profile_id"]
    inlines = [ProfileVersionInline, ProfileEventInline]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
