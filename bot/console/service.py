"""What the console does, independent of HTTP: views of tickets and the agent's actions."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional

from bot.faq.model import Faq
from bot.faq.render import render_topic
from bot.handoff.queue import PRIORITY_LABELS
from bot.handoff.relay import rating_buttons
from bot.handoff.store import TicketError, TicketStore
from bot.console.rasa_client import RasaClient

MAX_REPLY_CHARS = 2000
PUSH_CHANNELS = ("socketio", "telegram", "wechat")
"""Channels that can push to the user at any time: Rasa sends through them. REST users poll."""
OTHER_TITLES = {
    "out_of_scope": "超出服务范围", "contact_human": "要求人工", "nlu_fallback": "未识别",
    "greet": "问候", "goodbye": "告别", "thank": "感谢", "affirm": "肯定", "deny": "否定",
    "bot_challenge": "问是否机器人",
}


def _waiting_seconds(created_at: str, now: datetime) -> int:
    created = datetime.fromisoformat(created_at.rstrip("Z"))
    return max(0, int((now - created).total_seconds()))


class ConsoleService:
    def __init__(self, store: TicketStore, faq: Faq, rasa: RasaClient) -> None:
        self.store, self.faq, self.rasa = store, faq, rasa

    def _title(self, intent: Optional[str]) -> str:
        topic = self.faq.topics.get(intent or "")
        return topic.title if topic else OTHER_TITLES.get(intent or "", intent or "未知")

    def queue(self, now: datetime) -> List[Dict[str, Any]]:
        out = []
        for t in self.store.queue():
            out.append({
                **{k: t[k] for k in ("number", "channel", "status", "priority", "reason", "intent",
                                      "confidence", "agent", "created_at", "last_message_id")},
                "priority_label": PRIORITY_LABELS.get(t["priority"], str(t["priority"])),
                "topic": self._title(t["intent"]),
                "waiting_seconds": _waiting_seconds(t["created_at"], now),
            })
        return out

    def ticket(self, number: str) -> Dict[str, Any]:
        ticket = self.store.get(number)
        if ticket is None:
            raise TicketError("工单不存在", 404)
        suggestions = [
            {**s, "title": self._title(s.get("intent")),
             "answer": self.faq_answer(s.get("intent"))}
            for s in ticket["suggestions"]
        ]
        return {
            "ticket": ticket,
            "transcript": self.store.transcript(number),
            "suggestions": suggestions,
            "faq_answer": self.faq_answer(ticket["intent"]),
            "topic": self._title(ticket["intent"]),
        }

    def faq_answer(self, intent: Optional[str]) -> Optional[str]:
        """The answer the assistant would have given for this topic (for the agent to reuse)."""
        topic = self.faq.topics.get(intent or "")
        if topic is None:
            return None
        messages = render_topic(self.faq, topic, [])
        return "\n\n".join(m["text"] for m in messages[:-1])

    async def reply(self, number: str, agent: Dict[str, Any], text: str) -> Dict[str, Any]:
        text = (text or "").strip()
        if not text:
            raise TicketError("回复内容不能为空", 400)
        if len(text) > MAX_REPLY_CHARS:
            raise TicketError(f"回复太长（最多 {MAX_REPLY_CHARS} 字）", 413)
        ticket = self.store.reply_allowed(number, agent["id"])
        push = ticket["channel"] if ticket["channel"] in PUSH_CHANNELS else None
        message = self.store.add_message(number, "agent", text, agent_name=agent["name"], to_deliver=not push)
        in_tracker = await self.rasa.bot_message(
            ticket["conversation_id"], f"【人工客服 {agent['name']}】{text}" if push else text,
            {"from": "agent", "agent": agent["name"], "ticket": number}, push, once=f"{number}:{message['id']}")
        self.store.audit(agent["name"], "reply", number)
        return {"message": message, "in_tracker": in_tracker}

    async def close(self, number: str, agent: Dict[str, Any], note: str) -> Dict[str, Any]:
        note = (note or "").strip()
        if not note:
            raise TicketError("请填写处理结果（结单备注）", 400)
        ticket = self.store.close(number, agent["id"], note[:2000])
        closing = self.faq.message("agent_closed")
        rating = self.faq.message("rating_ask")
        push = ticket["channel"] if ticket["channel"] in PUSH_CHANNELS else None
        first = self.store.add_message(number, "system", closing, to_deliver=not push)
        self.store.add_message(number, "system", rating, to_deliver=not push, buttons=rating_buttons())
        resumed = await self.rasa.resume(ticket["conversation_id"], [closing, rating], push, rating_buttons(),
                                         once=f"{number}:{first['id']}")
        self.store.audit(agent["name"], "close", number, note[:200])
        return {"ticket": self.store.get(number), "resumed": resumed}
