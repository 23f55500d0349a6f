"""Only the buttons the assistant offered may force an intent.

Rasa reads a message starting with `/` as `/intent{"slot": "value"}` and skips the NLU, so a
user could type `/contact_human` or fill any slot. Such a message passes only when it is one of
the button payloads the assistant sent in this conversation; anything else is read as text.
"""
from __future__ import annotations

from typing import Iterable, Set

from rasa.shared.core.events import BotUttered, Event


def offered_payloads(events: Iterable[Event]) -> Set[str]:
    """Every button payload the assistant sent in this conversation."""
    offered: Set[str] = set()
    for event in events:
        if isinstance(event, BotUttered):
            data = event.data or {}
            for key in ("buttons", "quick_replies"):
                for button in data.get(key) or []:
                    if isinstance(button, dict) and isinstance(button.get("payload"), str):
                        offered.add(button["payload"].strip())
    return offered


def as_plain_text(text: str) -> str:
    """The message without its leading slashes, so Rasa's NLU reads it like any other text."""
    return text.lstrip("/").strip() or text.replace("/", "").strip()


def checked_payload(text: str, events: Iterable[Event]) -> str:
    """`text` itself when it is an offered payload (or no payload at all); else plain text."""
    stripped = text.strip()
    if not stripped.startswith("/"):
        return text
    if stripped in offered_payloads(events):
        return stripped
    return as_plain_text(stripped)
