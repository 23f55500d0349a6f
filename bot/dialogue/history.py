"""Facts about the conversation so far, read from Rasa tracker events."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

IGNORED_ACTIONS = ("action_listen", "action_session_start")


def action_before_latest_user_message(events: Sequence[Mapping[str, Any]]) -> Optional[str]:
    """The bot's last action before the user's latest message (None at conversation start)."""
    seen_user = False
    for event in reversed(events):
        if event.get("event") == "user":
            if seen_user:
                return None
            seen_user = True
        elif seen_user and event.get("event") == "action":
            if event.get("name") not in IGNORED_ACTIONS:
                return event.get("name")
    return None


def latest_user_text(events: Sequence[Mapping[str, Any]]) -> str:
    """What the user actually typed last (the NLU's `latest_message` holds the normalised text)."""
    for event in reversed(events):
        if event.get("event") == "user":
            text = event.get("text")
            return text if isinstance(text, str) else ""
    return ""
