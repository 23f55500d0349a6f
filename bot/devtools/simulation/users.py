"""The simulated users of bot/devtools/simulation/simulate.py: they say things, read the answers, react."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from bot.devtools.simulation import scripts as S
from bot.devtools.simulation.clock import SimClock

if TYPE_CHECKING:
    from bot.devtools.simulation.simulate import Simulation


class User:
    """One simulated user: says things, reads the answers, reacts like people do."""

    def __init__(self, sim: "Simulation", sender: str, channel: str, start: datetime) -> None:
        self.sim, self.sender, self.channel, self.t = sim, sender, channel, start
        self.rng = sim.rng
        self.clock = SimClock()
        self.ticket: Optional[Dict[str, Any]] = None
        self.replies: List[Dict[str, Any]] = []
        self.sent = 0  # a conversation stays within the per-sender rate limit (burst of 10)

    async def say(self, text: str) -> List[Dict[str, Any]]:
        self.clock.mark(self.t)
        self.replies = await self.sim.assistant.say(self.sender, self.channel, text)
        self.sim.result.messages += 1
        self.sent += 1
        self.ticket = self.sim.store.active_ticket(self.sender)
        if self.ticket:
            self.sim.tickets_seen.add(self.ticket["number"])
        self.t += timedelta(seconds=self.rng.uniform(8, 45))
        return self.replies

    # -- reading the answers -----------------------------------------------------------------
    def _has(self, key: str) -> bool:
        wanted = self.sim.faq.message(key)
        return any(r.get("text") == wanted for r in self.replies)

    def asked_resolved(self) -> bool:
        return self._has("ask_resolved")

    def payloads(self) -> List[str]:
        return [b["payload"] for r in self.replies for b in (r.get("buttons") or []) if b.get("payload")]

    async def press(self, payload: str, typed: List[str]) -> None:
        """Click the button when offered (most users), else type."""
        if payload in self.payloads() and self.rng.random() < 0.7:
            await self.say(payload)
        else:
            await self.say(self.rng.choice(typed))

    async def judge(self, satisfied: bool) -> None:
        """Answer 这个回答解决您的问题了吗？ (when it was asked)."""
        if self.ticket or not self.asked_resolved():
            return
        if satisfied:
            await self.press("/affirm", S.YES_TYPED)
        else:
            await self.press("/deny", S.NO_TYPED)

    async def ask(self, text: str, satisfied: bool) -> None:
        """A question; a clarifying question is answered by picking the first topic offered."""
        await self.say(text)
        if not self.ticket and self.sim.faq.message("clarify") in [r.get("text") for r in self.replies]:
            topics = [p for p in self.payloads() if p != "/contact_human"]
            if topics and self.rng.random() < 0.7:
                await self.say(topics[0])
            else:
                await self.press("/contact_human", S.HUMAN)
        await self.judge(satisfied)

    def question(self, topic: Optional[str] = None) -> Tuple[str, str]:
        topic = topic or self.rng.choices(list(S.TOPIC_WEIGHTS), weights=list(S.TOPIC_WEIGHTS.values()))[0]
        return topic, self.rng.choice(S.FAQ_QUESTIONS[topic])

    # -- scenarios -----------------------------------------------------------------------------
    async def faq_yes(self) -> None:
        if self.rng.random() < 0.3:
            await self.say(self.rng.choice(S.GREETINGS))
        await self.ask(self.question()[1], satisfied=True)
        if not self.ticket and self.rng.random() < 0.4:
            await self.say(self.rng.choice(S.THANKS + S.GOODBYES))

    async def faq_no(self) -> None:
        topic, text = self.question()
        await self.ask(text, satisfied=False)
        if self.ticket:
            return
        if self.rng.random() < 0.5:  # rephrases: a different wording of the same problem
            others = [q for q in S.FAQ_QUESTIONS[topic] if q != text] or [text]
            await self.ask(self.rng.choice(others), satisfied=self.rng.random() < 0.5)
        else:  # still no: the assistant hands off
            await self.say(self.rng.choice(S.NO_TYPED))

    async def faq_unhelpful(self) -> None:
        await self.say(self.question()[1])
        if not self.ticket and self.asked_resolved():
            await self.say(self.rng.choice(S.UNHELPFUL))
            if not self.ticket and self.rng.random() < 0.6:
                await self.press("/contact_human", S.HUMAN)

    async def two_questions(self) -> None:
        await self.say(self.rng.choice(S.GREETINGS))
        await self.ask(self.question()[1], satisfied=True)
        if not self.ticket:
            await self.ask(self.question()[1], satisfied=self.rng.random() < 0.75)
        if not self.ticket:
            await self.say(self.rng.choice(S.THANKS))

    async def gap(self) -> None:
        """A question the FAQ does not cover, then another wording of it, then a person."""
        first, second = self.rng.sample(self.rng.choice(S.GAP_CLUSTERS), 2)
        await self.ask(first, satisfied=False)
        if not self.ticket and self.rng.random() < 0.6:
            await self.ask(second, satisfied=False)
        if not self.ticket and self.rng.random() < 0.5:
            await self.press("/contact_human", S.HUMAN)

    async def out_of_scope(self) -> None:
        await self.ask(self.rng.choice(S.OUT_OF_SCOPE), satisfied=False)

    async def human(self) -> None:
        if self.rng.random() < 0.4:
            await self.ask(self.question()[1], satisfied=False)
        if not self.ticket:
            await self.say(self.rng.choice(S.HUMAN))

    async def fraud(self) -> None:
        await self.say(self.rng.choice(S.FRAUD_REPORTS))

    async def small_talk(self) -> None:
        await self.say(self.rng.choice(S.GREETINGS))
        if self.rng.random() < 0.5:
            await self.say(self.rng.choice(S.BOT_CHALLENGE))
        await self.say(self.rng.choice(S.GOODBYES))

    async def personal_data(self) -> None:
        await self.ask(self.rng.choice(S.WITH_PERSONAL_DATA), satisfied=self.rng.random() < 0.6)

    async def vague(self) -> None:
        await self.ask(self.rng.choice(S.VAGUE), satisfied=True)
        if not self.ticket and self.rng.random() < 0.5:
            await self.say(self.rng.choice(S.VAGUE))
