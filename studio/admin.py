"""Admin for operators: teams, members, invites and the audit log.

Secrets are never shown: the encrypted API keys are not fields of any form (only their masked
hints are), and an invite's token exists only as a hash, which is left out too. Changes that
the team pages make through the services (roles, removals, invites, keys, budgets) are
read-only here, so each keeps its checks (the last-owner rule) and its audit row.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import AuditEntry, Invite, Membership, Role, Team
from .services import membership_add


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ["user", "role", "created_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "server_id", "monthly_budget_usd", "created_at"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "slug"]
    fields = [
        "name",
        "slug",
        "server_id",
        "keys",
        "provider_choices",
        "brand_palette",
        "brand_output_format",
        "brand_width",
        "brand_height",
        "monthly_budget_usd",
        "budget_warn_percent",
        "budget_hard_stop",
    ]
    # Budgets are changed on the Usage page (by an owner, with an audit row).
    readonly_fields = ["keys", "monthly_budget_usd", "budget_warn_percent", "budget_hard_stop"]
    inlines = [MembershipInline]

    @admin.display(description="API keys")
    def keys(self, team: Team) -> str:
        hints = team.key_hints or {}
        return ", ".join(f"{p}: {h}" for p, h in sorted(hints.items())) or "none (sandbox)"


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Operators can put someone in a team; role changes and removals happen on the team's
    Members page, where the last-owner rule and the audit log apply."""

    list_display = ["user", "team", "role", "created_at"]
    list_filter = ["role", "team"]
    search_fields = ["user__username", "team__name"]
    autocomplete_fields = ["user", "team"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["user", "team", "role", "created_at"] if obj else []

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        if not change:
            obj.pk = membership_add(team=obj.team, user=obj.user, role=Role(obj.role)).pk


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    list_display = ["team", "role", "email", "created_by", "created_at", "expires_at", "status"]
    list_filter = ["role", "team"]
    search_fields = ["email", "team__name"]
    fields = [
        "team",
        "role",
        "email",
        "created_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "accepted_by",
        "revoked_at",
    ]
    readonly_fields = fields

    @admin.display(description="state")
    def status(self, invite: Invite) -> str:
        return invite.state

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "team", "actor", "action", "summary", "address"]
    list_filter = ["action", "team"]
    search_fields = ["summary", "actor__username", "address"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
