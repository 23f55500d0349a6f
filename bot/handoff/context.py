"""What a ticket carries from the conversation: the user's recent messages."""
from __future__ import annotations

from typing import Any, Iterable, List, Mapping


def recent_user_messages(events: Iterable[Mapping[str, Any]], limit: int) -> List[str]:
    """The last `limit` user texts, oldest first (button payloads shown as such)."""
    texts = [e.get("text") or "" for e in events if e.get("event") == "user"]
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    return texts[-limit:] if limit > 0 else []
