"""What a ticket carries from the conversation: the user's recent messages."""
from __future__ import annotations

from typing import Any, Iterable, List, Mapping, Tuple


def recent_user_messages(events: Iterable[Mapping[str, Any]], limit: int) -> List[str]:
    """The last `limit` user texts, oldest first (button payloads shown as such)."""
    texts = [e.get("text") or "" for e in events if e.get("event") == "user"]
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    return texts[-limit:] if limit > 0 else []


def transcript_so_far(events: Iterable[Mapping[str, Any]]) -> List[Tuple[str, str]]:
    """(role, text) of every user and bot turn, for the agent's transcript."""
    turns = []
    for e in events:
        if e.get("event") in ("user", "bot") and isinstance(e.get("text"), str) and e["text"].strip():
            turns.append(("user" if e["event"] == "user" else "bot", e["text"]))
    return turns
