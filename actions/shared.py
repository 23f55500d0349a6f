"""What every action uses: the hot-reloading FAQ and the dispatcher helper."""
from __future__ import annotations

from typing import Any, Dict, Iterable

from rasa_sdk.executor import CollectingDispatcher

from bot.faq.model import Faq
from bot.faq.store import shared_store


def faq() -> Faq:
    """The current FAQ (re-read when the file changed)."""
    return shared_store().get()


def send(dispatcher: CollectingDispatcher, messages: Iterable[Dict[str, Any]]) -> None:
    """Utter rendered messages; an answer's FAQ entry id becomes the bot event's metadata
    (`faq_id`), which the REST channel also returns as `metadata.faq_id`."""
    for message in messages:
        extra = (message.get("metadata") or {})
        dispatcher.utter_message(text=message["text"], buttons=message.get("buttons") or [], **extra)
