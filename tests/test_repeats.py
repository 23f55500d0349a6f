"""A message sent again with the same id (nginx moved it to another instance, or the client
retried a 503) is answered from the tracker, not handled twice (bot/serving/processor.py,
bot/channels/rest.py). On real servers: tests/test_scale_faults.py."""
from __future__ import annotations

from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.serving.processor import earlier_answers


def _tracker(events) -> DialogueStateTracker:
    return DialogueStateTracker.from_events("u1", events)


def test_a_repeated_message_gets_the_answers_it_got_the_first_time():
    buttons = [{"title": "是", "payload": "/affirm"}]
    tracker = _tracker([
        ActionExecuted("action_listen"),
        UserUttered("退款多久到账", {"name": "refund"}, message_id="m1"),
        BotUttered("一般 1-3 个工作日到账。"),
        BotUttered("解决了吗？", {"buttons": buttons}),
        ActionExecuted("action_listen"),
        UserUttered("是", {"name": "affirm"}, message_id="m2"),
        BotUttered("很高兴帮到您"),
        ActionExecuted("action_listen"),
    ])
    first = earlier_answers(tracker, "m1")
    assert [m["text"] for m in first] == ["一般 1-3 个工作日到账。", "解决了吗？"]
    assert first[1]["buttons"] == buttons
    assert [m["text"] for m in earlier_answers(tracker, "m2")] == ["很高兴帮到您"]
    assert earlier_answers(tracker, "m3") is None  # a new message: handled as usual
    assert earlier_answers(tracker, None) is None
    stored_without_answer = _tracker([UserUttered("在吗", message_id="m4")])
    assert earlier_answers(stored_without_answer, "m4") == []  # stored, nothing to say again


def test_rest_takes_the_request_id_only_when_it_looks_like_one():
    from types import SimpleNamespace

    from bot.channels.rest import request_id

    def req(value):
        return SimpleNamespace(headers={"x-request-id": value} if value is not None else {})

    assert request_id(req("3f2a9c0e5b7d4e1f8a6b2c4d6e8f0a1b")) == "3f2a9c0e5b7d4e1f8a6b2c4d6e8f0a1b"
    assert request_id(req(None)) is None
    assert request_id(req("short")) is None
    assert request_id(req("x" * 65)) is None
    assert request_id(req("id with spaces and 中文")) is None


def test_a_tracker_store_error_is_an_error_not_a_new_conversation():
    """Rasa's FailSafeTrackerStore would answer "no tracker" when the database fails, and the
    message would be handled as the first of a new conversation (bot/serving/patches.py)."""
    import asyncio

    import pytest
    from rasa.core.agent import Agent
    from rasa.core.tracker_store import InMemoryTrackerStore
    from rasa.shared.core.domain import Domain

    from bot.serving import patches

    patches.install()

    class DatabaseDown(InMemoryTrackerStore):
        async def retrieve(self, sender_id):
            raise ConnectionError("server closed the connection unexpectedly")

        async def save(self, tracker):
            raise ConnectionError("server closed the connection unexpectedly")

    store = Agent._create_tracker_store(DatabaseDown(Domain.empty()), Domain.empty())
    with pytest.raises(ConnectionError):
        asyncio.run(store.get_or_create_tracker("u1"))
    with pytest.raises(ConnectionError):
        asyncio.run(store.save(DialogueStateTracker.from_events("u1", [])))


def test_a_repeat_whose_first_copy_stopped_before_the_ticket_note_stores_it_once(sqlite_url):
    """The instance died after Rasa stored the turn but before the relay noted it on the ticket:
    the repeat notes it; a second repeat does not (bot/handoff/relay.py finish_repeat)."""
    import asyncio

    from bot.config import handoff_settings
    from bot.faq.store import shared_store
    from bot.handoff.relay import HandoffRelay
    from bot.handoff.store import HandoffRequest, TicketStore

    store = TicketStore(sqlite_url)
    ticket, _ = store.open_ticket(HandoffRequest("u9", "rest", "contact_human", "refund", 0.9, ["退款没到账"]))
    relay = HandoffRelay(store, shared_store().get(), handoff_settings())

    def said():
        return [m["text"] for m in store.transcript(ticket["number"]) if m["role"] == "user"]

    turn = asyncio.run(relay.begin("u9", "订单号在截图里"))
    assert turn.ticket and turn.ticket["number"] == ticket["number"]
    for _ in range(2):
        replies = asyncio.run(relay.finish_repeat(turn, "订单号在截图里"))
        assert ticket["number"] in replies[0]["text"]
        assert said().count("订单号在截图里") == 1
    assert asyncio.run(relay.finish_repeat(asyncio.run(relay.begin("u10", "你好")), "你好")) == []
