"""The ticket store on SQLite and on the real PostgreSQL of this machine."""
import uuid

import pytest

from bot.handoff.context import recent_user_messages
from bot.handoff.store import HandoffRequest, TicketStore


def _request(conversation, reason="low_confidence", messages=("退款没到账",)):
    return HandoffRequest(conversation, "rest", reason, "refund", 0.41, list(messages))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, sqlite_url):
    return sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")


@pytest.fixture
def store(db_url):
    return TicketStore(db_url)


def test_open_ticket_keeps_context(store):
    conversation = f"c-{uuid.uuid4()}"
    ticket, created = store.open_ticket(_request(conversation, messages=("在吗", "退款没到账")))
    assert created
    assert ticket["number"].startswith("T") and ticket["status"] == "open"
    assert ticket["recent_messages"] == ["在吗", "退款没到账"]
    assert (ticket["channel"], ticket["reason"], ticket["intent"]) == ("rest", "low_confidence", "refund")
    assert store.get(ticket["number"])["conversation_id"] == conversation


def test_one_open_ticket_per_conversation(store):
    conversation = f"c-{uuid.uuid4()}"
    first, _ = store.open_ticket(_request(conversation))
    again, created = store.open_ticket(_request(conversation, reason="contact_human"))
    assert not created and again["number"] == first["number"]
    other, created = store.open_ticket(_request(f"c-{uuid.uuid4()}"))
    assert created and other["number"] != first["number"]


def test_unknown_reason_is_refused(store):
    with pytest.raises(ValueError):
        store.open_ticket(_request("c", reason="because"))


def test_recent_user_messages_from_tracker_events():
    events = [
        {"event": "user", "text": "你好"},
        {"event": "bot", "text": "您好"},
        {"event": "user", "text": "  "},
        {"event": "user", "text": "退款"},
        {"event": "user", "text": "还没到"},
    ]
    assert recent_user_messages(events, 2) == ["退款", "还没到"]
    assert recent_user_messages(events, 0) == []


def test_queue_order_priority_then_age(store):
    run = uuid.uuid4().hex[:6]
    made = []
    for name, intent in [("a", "refund"), ("b", "account_frozen"), ("c", "report_fraud"),
                         ("d", "account_security"), ("e", "report_fraud"), ("f", None)]:
        req = HandoffRequest(f"{run}-{name}", "rest", "contact_human", intent, 0.9, [])
        made.append(store.open_ticket(req)[0]["number"])
    mine = [t["conversation_id"][-1] for t in store.queue() if t["conversation_id"].startswith(run)]
    assert mine == ["c", "e", "d", "b", "a", "f"]
    assert store.queue_position(made[2]) < store.queue_position(made[4]) < store.queue_position(made[0])


def _agent(db_url, name):
    from bot.handoff.agents import AgentStore

    return AgentStore(db_url).add(f"{name}-{uuid.uuid4().hex[:6]}", "password123")


def test_claim_race_exactly_one_wins(store, db_url):
    from concurrent.futures import ThreadPoolExecutor

    from bot.handoff.store import TicketError

    number = store.open_ticket(_request(f"c-{uuid.uuid4()}"))[0]["number"]
    agents = [_agent(db_url, f"a{i}") for i in range(8)]

    def attempt(agent):
        try:
            store.claim(number, agent["id"])
            return "won"
        except TicketError as err:
            return err.status

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, agents))
    assert results.count("won") == 1 and results.count(409) == 7
    assert store.get(number)["status"] == "claimed"


def test_reply_close_rate_and_outbox(store, db_url):
    from bot.handoff.store import TicketError

    conversation = f"c-{uuid.uuid4()}"
    number = store.open_ticket(_request(conversation))[0]["number"]
    owner, other = _agent(db_url, "owner"), _agent(db_url, "other")
    with pytest.raises(TicketError) as err:
        store.reply_allowed(number, owner["id"])
    assert err.value.status == 409
    store.claim(number, owner["id"])
    with pytest.raises(TicketError) as err:
        store.close(number, other["id"], "x")
    assert err.value.status == 403
    store.add_message(number, "agent", "您好，我来帮您查", agent_name=owner["name"], to_deliver=True)
    assert [m["text"] for m in store.take_outbox(conversation)] == ["您好，我来帮您查"]
    assert store.take_outbox(conversation) == []
    store.transfer(number, owner["id"], other["id"])
    closed = store.close(number, other["id"], "已处理")
    assert closed["status"] == "closed" and closed["awaiting_rating"] and closed["resolution_note"] == "已处理"
    assert store.active_ticket(conversation) is None
    assert store.ticket_awaiting_rating(conversation)["number"] == number
    assert store.rate(number, 5) and store.get(number)["rating"] == 5
    assert not store.rate(number, 4)
    assert store.recent_handling_seconds()


def test_cancel(store):
    conversation = f"c-{uuid.uuid4()}"
    store.open_ticket(_request(conversation))
    assert store.cancel(conversation)["status"] == "cancelled"
    assert store.active_ticket(conversation) is None and store.cancel(conversation) is None


def test_open_with_reply_stores_ticket_queue_place_and_reply_together(store):
    conversation = f"c-{uuid.uuid4()}"
    seen = []

    def reply(ticket, created, outlook):
        seen.append((created, outlook.position(), outlook.handling_seconds()))
        return [f"已为您转人工，工单号 {ticket['number']}", "前面还有人在排队"] if created else ["已有工单"]

    ticket, texts = store.open_with_reply(_request(conversation), reply)
    assert seen[0][0] is True and seen[0][1] == store.queue_position(ticket["number"]) >= 1
    assert [m["text"] for m in store.transcript(ticket["number"]) if m["role"] == "bot"] == texts
    again, texts_again = store.open_with_reply(_request(conversation), reply)
    assert again["number"] == ticket["number"] and texts_again == ["已有工单"] and seen[1][0] is False


def test_open_with_reply_leaves_nothing_when_the_reply_fails(store):
    conversation = f"c-{uuid.uuid4()}"

    def broken(ticket, created, outlook):
        raise RuntimeError("FAQ text missing")

    with pytest.raises(RuntimeError):
        store.open_with_reply(_request(conversation), broken)
    assert store.active_ticket(conversation) is None


def test_anything_for_answers_the_relays_two_questions_at_once(store):
    conversation = f"c-{uuid.uuid4()}"
    assert store.anything_for(conversation) == (False, False)
    number = store.open_ticket(_request(conversation))[0]["number"]
    assert store.anything_for(conversation) == (False, True)
    store.add_message(number, "agent", "您好，我来处理", agent_name="小王", to_deliver=True)
    assert store.anything_for(conversation) == (True, True)
    assert [m["text"] for m in store.take_outbox(conversation)] == ["您好，我来处理"]
    assert store.anything_for(conversation) == (False, True)
