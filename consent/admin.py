"""Admin: read-only. Consents change only through the pages (and so the services), which keep
the audit trail; the admin only looks, and never shows a release document or a signing key."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import Consent, ConsentEvent, ConsentPolicy, SigningCredential, TrustAnchor


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Consent)
class ConsentAdmin(ReadOnly):
    list_display = ["subject", "team", "usage", "expires_on", "revoked_at", "created_at"]
    list_filter = ["usage", "team"]
    search_fields = ["subject"]
    exclude = ["document"]


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnly):
    list_display = ["created_at", "team", "action", "actor", "consent", "job", "message"]
    list_filter = ["action", "team"]


@admin.register(ConsentPolicy)
class ConsentPolicyAdmin(ReadOnly):
    list_display = ["team", "mode", "updated_by", "updated_at"]


@admin.register(SigningCredential)
class SigningCredentialAdmin(ReadOnly):
    list_display = ["team", "subject", "development", "not_after", "updated_at"]
    exclude = ["private_key"]


@admin.register(TrustAnchor)
class TrustAnchorAdmin(ReadOnly):
    list_display = ["team", "subject", "not_after", "added_by", "added_at"]
