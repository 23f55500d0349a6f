"""What every action uses: the hot-reloading FAQ and the dispatcher helper."""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, Iterable

from rasa_sdk.executor import CollectingDispatcher

from bot.faq.model import Faq
from bot.faq.store import FaqStore
from bot.paths import faq_path


@lru_cache(maxsize=1)
def _faq_store() -> FaqStore:
    return FaqStore(faq_path())


def faq() -> Faq:
    """The current FAQ (re-read when the file changed)."""
    return _faq_store().get()


def send(dispatcher: CollectingDispatcher, messages: Iterable[Dict[str, Any]]) -> None:
    for message in messages:
        dispatcher.utter_message(text=message["text"], buttons=message.get("buttons") or [])
