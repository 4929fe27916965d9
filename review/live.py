"""What the review app's live events look like on each open page.

`studio.views.events` hands every message of the team channel here when it is not a job's;
each result is (SSE event name, HTML) rendered *for that user* from the database, so the
stream carries nothing the user could not load as a page.

- "review" (a decision): `job-<id>` re-renders the gallery card (its review badge), and
  `review-<output id>` replaces the output's item in every open review queue; a page showing
  the output refreshes itself on `review-<output id>` too.
- "history" (a comment or a new version): `history-<output id>`, a bare trigger for the
  output's history to reload.
- "review-opened" (a new output to review): `queue-new`, a notice on open queues.
"""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

from . import selectors

EVENTS = ("review", "history", "review-opened")


def messages_for(user: Any, data: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the SSE messages one published review event becomes for `user`."""
    event = data.get("event")
    try:
        output_id = int(data["output_id"])
    except (KeyError, TypeError, ValueError):
        return []
    review = selectors.review_for_user(user, output_id)
    if review is None:
        return []
    if event == "review":
        messages = []
        job = selectors.gallery_card(user, review.output.job_id)
        if job is not None:
            messages.append(
                (f"job-{job.pk}", render_to_string("jobs/gallery.html#card", {"job": job}))
            )
        item = render_to_string("review/queue.html#item", {"review": review, "live": True})
        messages.append((f"review-{output_id}", item))
        return messages
    if event == "history":
        return [(f"history-{output_id}", str(output_id))]
    if event == "review-opened":
        return [("queue-new", render_to_string("review/queue.html#new-notice", {}))]
    return []
