"""Run one user message through the hand-off relay and Rasa (for any input channel).

Before anything sees the message: the per-conversation rate limit, masking of secrets and
personal data in the text and in every string of its `metadata` (nothing unmasked reaches the
tracker, tickets or logs), and the check that a `/payload` is one the assistant offered. The
limit and the masker's memory of the previous message's digits are in the shared state
(bot/shared_state) and are read together: one Redis round trip per message (a second only when
the message ends in digits to remember, or completes some); on the scale-out the conversation's
lock is taken in that same round trip (bot/serving/lock_store.py claim_lock). The
whole turn runs `calling_from(caller)`, so a hand-off it opens counts against the ticket limits
(bot/security/rate_limit.py). Returns the replies the channel must send besides what
Rasa sent to the output channel: hand-off acknowledgements, cancel/rating answers and agent
messages from the outbox.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable, Dict, List, Optional

from rasa.core.channels.channel import CollectingOutputChannel, OutputChannel, UserMessage
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import ActionExecuted, BotUttered, ConversationResumed, UserUttered

from bot.faq.answer import answer_messages
from bot.faq.match import index_for
from bot.faq.model import Faq
from bot.faq.store import shared_store
from bot.handoff.relay import HandoffRelay, may_answer_while_queued
from bot.handoff.store import ticket_store
from bot.privacy.carryover import SharedRecentDigits, mask_in_conversation
from bot.privacy.metadata import mask_values
from bot.security.payloads import checked_payload
from bot.security.rate_limit import UNKNOWN_CALLER, Caller, calling_from, check_sender
from bot.security.tokens import derived_key
from bot.shared_state import shared_state
from bot.serving.gc_pauses import note_activity
from bot.serving.lock_store import LockClaim, claim_lock, holding_claim
from bot.serving.processor import ensure_fast_processor, was_repeated
from bot.serving.turn_gate import one_turn
from bot.config import handoff_settings
from bot.topics import FAQ_TOPICS

QUEUED_ANSWER_TOPICS = frozenset(FAQ_TOPICS) - {"report_fraud", "complaint"}
"""While queued, scam reports and complaints are the person's to answer."""


def rate_limited_text() -> str:
    """What a user who sends too fast is told (FAQ message `rate_limited`, staff-editable)."""
    return shared_store().get().message("rate_limited")


_digits: List[SharedRecentDigits] = []


def recent_digits() -> SharedRecentDigits:
    """The masker's memory of each conversation's last digits, on the process's shared state
    (sealed with a key of this installation when it leaves the process)."""
    state = shared_state()
    if not _digits or _digits[0].state is not state:
        _digits[:] = [SharedRecentDigits(state, derived_key("masker-carryover") if state.shared else None)]
    return _digits[0]


def relay() -> HandoffRelay:
    settings = handoff_settings()
    return HandoffRelay(ticket_store(settings.database_url), shared_store().get(), settings)


def prepare() -> None:
    """Before the process takes traffic: the hand-off database, the FAQ and its question index
    (the sentence encoder's weights and the FAQ's wordings), so no user waits for them; and the
    shared state, whose first use says in the log where it lives (and whether Redis answers)."""
    relay()
    index_for(shared_store().get())
    recent_digits().get("")  # one round trip: connects, or logs that Redis cannot be used


async def append_events(app: Any, sender: str, events: List[Any]) -> None:
    """Add events to the conversation's tracker under its lock (transcript stays complete)."""
    agent = app.ctx.agent
    async with agent.lock_store.lock(sender):
        tracker = await agent.processor.get_tracker(sender)
        for event in events:
            tracker.update(event)
        await agent.processor.save_tracker(tracker)


async def handle_message(
    app: Any,
    on_new_message: Callable[[UserMessage], Awaitable[Any]],
    text: str,
    sender: str,
    channel: str,
    output: OutputChannel,
    metadata: Optional[Dict[str, Any]] = None,
    caller: Caller = UNKNOWN_CALLER,
    message_id: Optional[str] = None,
) -> List[Dict[str, Any]]:
    """Raises RateLimited when the conversation, or the caller's address, sends faster than allowed
    (both checked here, in the message's one round trip: channels need no check of their own).

    `metadata`: already checked by the channel (bot/channels/payload.py checked_metadata);
    `caller`: who is calling, for the ticket limits (default: an address we do not know, so only
    the overall limit applies); `message_id`: the request's id when the channel has one (REST's
    X-Request-ID): a message repeated with the same id is answered once (bot/serving/processor.py)."""
    note_activity()  # no full garbage collection while messages arrive (bot/serving/gc_pauses.py)
    with calling_from(caller), holding_claim(claim_lock(app.ctx.agent.lock_store, sender)) as claim:
        return await _handle_message(app, on_new_message, text, sender, channel, output, metadata, message_id, claim,
                                     caller.address if caller.limited else None)


async def _handle_message(
    app: Any,
    on_new_message: Callable[[UserMessage], Awaitable[Any]],
    text: str,
    sender: str,
    channel: str,
    output: OutputChannel,
    metadata: Optional[Dict[str, Any]],
    message_id: Optional[str] = None,
    claim: Optional[LockClaim] = None,
    address: Optional[str] = None,
) -> List[Dict[str, Any]]:
    faq = shared_store().get()
    digits = recent_digits()
    # one round trip: the limits (conversation, address), the masker's memory and (scale-out) the lock
    stored, *lease = check_sender(sender, rate_limited_text(), also=[digits.read(sender)] + ([claim.op] if claim else []),
                                  address=address)
    if claim is not None:
        claim.settle(lease[0])
    ensure_fast_processor(app.ctx.agent)
    # also the rest of a number begun in the last message
    masked = mask_in_conversation(text, sender, digits, previous=digits.tail(stored))
    text = masked.text
    kinds = set(masked.kinds)
    if metadata:
        metadata, found = mask_values(metadata)
        kinds.update(found)
    if kinds:
        metadata = {**(metadata or {}), "masked": sorted(kinds)}
    # At peak, turns run whole and in arrival order (turn_gate.py); only where the answer is
    # collected and returned: a channel that sends over the network mid-turn (Telegram) would
    # hold everyone else up while it waits.
    async with one_turn(gated=isinstance(output, CollectingOutputChannel)):
        if text.lstrip().startswith("/"):
            text = checked_payload(text, (await app.ctx.agent.processor.get_tracker(sender)).events)
        warning = faq.message("secret_warning") if masked.shares_secret else None
        if warning:  # at once, before the answer
            await output.send_text_message(sender, warning)
        flow = relay()
        turn = await flow.begin(sender, text)
        answered = None
        if turn.handled is not None:
            events: List[Any] = [UserUttered(text, input_channel=channel, metadata=metadata, message_id=message_id)]
            if any(r.pop("resume", False) for r in turn.handled):
                events.append(ConversationResumed())
            events += [BotUttered(r["text"]) for r in turn.handled] + [ActionExecuted(ACTION_LISTEN_NAME)]
            await append_events(app, sender, events)
        else:
            message = UserMessage(text, output, sender, input_channel=channel, metadata=metadata, message_id=message_id)
            await on_new_message(message)
            if was_repeated(message):  # sent again with the same id: answered from the tracker, noted once
                return turn.earlier + await flow.finish_repeat(turn, text)
            if may_answer_while_queued(turn.ticket):
                answered = await answer_while_queued(app, faq, text)
                if answered:
                    await append_events(app, sender, [BotUttered(r["text"], {"buttons": r["buttons"]}, r["metadata"])
                                                       for r in answered])
        if warning:  # the transcript shows the agent the user was warned
            await append_events(app, sender, [BotUttered(warning, metadata={"from": "privacy"})])
        return turn.earlier + (turn.handled or []) + (answered or []) + await flow.finish(sender, turn, text, answered)


async def answer_while_queued(app: Any, faq: Faq, text: str) -> List[Dict[str, Any]]:
    """The assistant's answer to a question it knows, for a user waiting in the queue (no
    是/否: the person will follow up), or [] when the message is not such a question."""
    parse = await app.ctx.agent.processor.parse_message(UserMessage(text))
    intent = (parse.get("intent") or {}).get("name")
    if intent not in QUEUED_ANSWER_TOPICS or intent not in faq.topics:
        return []
    messages = answer_messages(faq, faq.topics[intent], parse.get("entities") or [], text, ask_resolved=False)
    return [{"text": m["text"], "buttons": m.get("buttons") or [],
             "metadata": {**(m.get("metadata") or {}), "from": "assistant"}} for m in messages]
