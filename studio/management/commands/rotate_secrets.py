from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from studio.services import secrets_rotate


class Command(BaseCommand):
    help = "Re-encrypt stored secrets with the first key of FIELD_ENCRYPTION_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        count = secrets_rotate()
        self.stdout.write(f"Re-encrypted {count} secret(s) with the newest key.")
