"""What users read about notices in the chat: the notice first, then the FAQ answer.

Texts come from `data/faq.yml` `messages:` (`notice_banner`, `status_normal`) so support staff
can reword them; an older FAQ file without them still works with the defaults below.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Sequence

from bot.faq.model import Faq
from bot.notices.timing import until_in_words
from bot.notices.store import Notice, NoticeStore, notice_store

logger = logging.getLogger(__name__)
Message = Dict[str, Any]
STATUS_TOPIC = "service_status"
DEFAULT_MESSAGES = {
    "notice_banner": "【服务公告】{notice}（预计 {until} 恢复）",
    "status_normal": "目前{brand}各项服务运行正常，没有已知的系统故障或维护。如果您仍然遇到问题，可以按下面的方法排查：",
}


def faq_message(faq: Faq, key: str, **values: Any) -> str:
    """A `messages:` text of the FAQ, or our default when the file does not have it."""
    template = faq.messages.get(key) or DEFAULT_MESSAGES[key]
    return faq.fill(template, **values)


def notice_messages(faq: Faq, notices: Sequence[Notice], store: NoticeStore) -> List[Message]:
    """One chat message per notice, with the expected end in the support team's local time."""
    now = store.now()
    return [{"text": faq_message(faq, "notice_banner", notice=n.text, until=until_in_words(n.until, now, store.tz))}
            for n in notices]


def messages_before_answer(faq: Faq, topic: str, store: Optional[NoticeStore] = None) -> List[Message]:
    """The notices to send before the FAQ answer of `topic`.

    `service_status` gets every active notice, or "all systems normal" when there is none; the
    FAQ answer then follows as general guidance. If the notices cannot be read (database down)
    the user still gets the answer, without a claim that all is well.
    """
    try:
        store = store or notice_store()
        now = store.now()
        notices = store.active(now) if topic == STATUS_TOPIC else store.for_topic(topic, now)
    except Exception:  # the answer matters more than the notice: never fail the turn over it
        logger.exception("service notices could not be read; answering without them")
        return []
    if topic == STATUS_TOPIC and not notices:
        return [{"text": faq_message(faq, "status_normal")}]
    return notice_messages(faq, notices, store)
