"""Admin views of review data: read-mostly. Review state changes go through the services (the
site's screens), never through the admin, so every one has its audit row."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from .models import Board, BoardItem, Comment, CommentRevision, Export, Review, ReviewEvent


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


class ReviewEventInline(admin.TabularInline):
    model = ReviewEvent
    fk_name = "review"
    extra = 0
    can_delete = False
    readonly_fields = ["created_at", "actor", "action", "from_state", "to_state", "note"]
    fields = readonly_fields

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Review)
class ReviewAdmin(ReadOnly):
    list_display = ["output", "team", "state", "decided_by", "decided_at", "entered_at"]
    list_filter = ["state", "team"]
    inlines = [ReviewEventInline]


class CommentRevisionInline(admin.TabularInline):
    model = CommentRevision
    extra = 0
    can_delete = False
    readonly_fields = ["replaced_at", "body"]


@admin.register(Comment)
class CommentAdmin(ReadOnly):
    """Comments are never deleted: what was said stays on the record."""

    list_display = ["pk", "output", "author", "created_at", "edited_at"]
    list_filter = ["team"]
    search_fields = ["body"]
    inlines = [CommentRevisionInline]


class BoardItemInline(admin.TabularInline):
    model = BoardItem
    extra = 0
    raw_id_fields = ["output", "added_by"]


@admin.register(Board)
class BoardAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "created_by", "created_at"]
    list_filter = ["team"]
    search_fields = ["name"]
    raw_id_fields = ["created_by"]
    inlines = [BoardItemInline]


@admin.register(Export)
class ExportAdmin(ReadOnly):
    list_display = ["pk", "team", "label", "status", "done", "total", "created_at"]
    list_filter = ["status", "team"]
