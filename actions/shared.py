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
    for message in messages:
        dispatcher.utter_message(text=message["text"], buttons=message.get("buttons") or [])
