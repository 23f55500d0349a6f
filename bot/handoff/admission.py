"""May a new hand-off ticket be opened now? The agents' queue is protected from floods.

A new ticket counts against two limits (bot/security/rate_limit.py, `security.rate_limit` in
assistant.yml): per client address and for everyone together per minute. Reusing the
conversation's open ticket is free. When a limit is reached the user gets a calm answer with
what to do meanwhile, and the assistant goes on answering (nothing is paused).
"""
from __future__ import annotations

from bot.faq.model import Faq
from bot.security.rate_limit import check_new_ticket

BUSY_MESSAGE = "handoff_busy"
DEFAULT_BUSY_TEXT = ("现在转人工的请求较多，暂时无法为您创建工单，请稍后再试，也可以先通过{official_channel}留言。"
                     "如遇诈骗、资金被盗等紧急情况，请立即拨打 110 报警或反诈专线 96110。")
"""The FAQ file may reword it (messages: handoff_busy); this applies when it does not."""


def busy_text(faq: Faq) -> str:
    """What a user is told when no ticket can be opened now."""
    return faq.fill(faq.messages.get(BUSY_MESSAGE) or DEFAULT_BUSY_TEXT)


def admit_new_ticket(faq: Faq) -> None:
    """Raise RateLimited (with `busy_text`) when a new ticket may not be opened now."""
    check_new_ticket(busy_text(faq))
