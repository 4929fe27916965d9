"""Logs never carry secrets: webhook tokens are redacted from every log record, whichever
handler ends up writing it.

Three layers, because a record can reach a handler the studio did not configure:

- `configure` (Django's LOGGING_CONFIG) installs a log-record factory, so every record created
  in the process, by any logger, has its message and arguments redacted before any handler or
  formatter sees it (uvicorn's access log passes the path as an argument; Celery's and Django's
  own handlers get clean records too);
- `RedactingFormatter` redacts the final text, tracebacks included (an exception's message can
  quote a URL);
- `RedactSecretsFilter` (on the handlers) also rewrites a Django request's path.
"""

from __future__ import annotations

import logging
import logging.config
import re
from typing import Any

# /webhooks/<provider>/<token>/ — the token is the only credential of a webhook call. Also
# matches the path inside a full callback URL, JSON-escaped slashes included.
WEBHOOK_PATH = re.compile(
    r"((?:\\?/)webhooks(?:\\?/)[\w-]+(?:\\?/))(?!\[redacted\])[^/\s\"'\\?#&]+"
)


def redact(text: str) -> str:
    return WEBHOOK_PATH.sub(r"\1[redacted]", text)


def _redact_value(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_redact_value(a) for a in record.args)
    elif isinstance(record.args, dict):
        record.args = {k: _redact_value(v) for k, v in record.args.items()}
    return record


class RedactSecretsFilter(logging.Filter):
    """Rewrite a record's message and arguments with webhook tokens replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        request = getattr(record, "request", None)
        if request is not None and hasattr(request, "path"):
            record.path = redact(request.path)
        return True


class RedactingFormatter(logging.Formatter):
    """A formatter whose whole output (message, traceback, stack) is redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


_MARK = "_studio_redacting"


def install_record_factory() -> None:
    """Redact every record at creation, in this process (idempotent)."""
    current = logging.getLogRecordFactory()
    if getattr(current, _MARK, False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(current(*args, **kwargs))

    setattr(factory, _MARK, True)
    logging.setLogRecordFactory(factory)


def configure(config: dict[str, Any]) -> None:
    """Django's LOGGING_CONFIG: apply LOGGING, and redact every record from now on."""
    install_record_factory()
    if config:
        logging.config.dictConfig(config)
