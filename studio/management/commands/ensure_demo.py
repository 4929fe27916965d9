from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from studio.services import demo_account_ensure


class Command(BaseCommand):
    help = "Create the demo team and its owner if they do not exist; print the login once."

    def handle(self, *args: Any, **options: Any) -> None:
        account = demo_account_ensure()
        if account.password:
            self.stdout.write(f"Created {account.username} / {account.password}")
        else:
            self.stdout.write(f"{account.username} exists; password unchanged.")
