"""Template filters of the review screens."""

from __future__ import annotations

import re

from django import template
from django.utils.html import escape, linebreaks
from django.utils.safestring import SafeString, mark_safe

from review.models import Action

register = template.Library()

LABELS = {
    Action.APPROVE: "Approve",
    Action.REQUEST_CHANGES: "Request changes",
    Action.REJECT: "Reject",
    Action.REOPEN: "Reopen",
    Action.RESUBMIT: "Resubmit for review",
}
KEYS = {Action.APPROVE: "a", Action.REQUEST_CHANGES: "c", Action.REJECT: "r"}
MENTION = re.compile(r"(?<![\w@])@([\w.@+-]{1,150})")


@register.filter
def action_label(action: str) -> str:
    return LABELS.get(Action(action), action)


@register.filter
def action_key(action: str) -> str:
    return KEYS.get(Action(action), "")


@register.filter
def with_mentions(body: str) -> SafeString:
    """Return a comment as HTML: escaped, line breaks kept, @mentions marked."""
    html = linebreaks(escape(body))
    # Mentions are marked after escaping, on text that can no longer hold markup.
    return mark_safe(MENTION.sub(r'<span class="mention">@\1</span>', html))  # noqa: S308
