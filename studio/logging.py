"""Log filters: webhook secrets never reach a log line."""

from __future__ import annotations

import logging
import re

# /webhooks/<provider>/<token>/ — the token is the only credential of a webhook call.
WEBHOOK_PATH = re.compile(r"(/webhooks/[\w-]+/)[^/\s\"']+")


def redact(text: str) -> str:
    return WEBHOOK_PATH.sub(r"\1[redacted]", text)


class RedactSecretsFilter(logging.Filter):
    """Rewrite a record's message and arguments with webhook tokens replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        request = getattr(record, "request", None)
        if request is not None and hasattr(request, "path"):
            record.path = redact(request.path)
        return True
