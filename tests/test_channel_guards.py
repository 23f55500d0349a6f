"""Trust, round two, without a server: the metadata checks and masking, the new-session and
new-ticket limits, the guard of Rasa's HTTP API (JWT rules, events, actions, parse_data) and the
shipped nginx template. End to end: tests/test_trust_channels.py."""
from __future__ import annotations

import json
import re
import time

import jwt
import pytest

from bot.channels.payload import MAX_METADATA_BYTES, PayloadError, checked_metadata, parse_chat_payload
from bot.channels.socketio import DEFAULT_SESSIONS_BUSY_TEXT, message_metadata
from bot.config import ROOT
from bot.faq.store import shared_store
from bot.handoff.admission import DEFAULT_BUSY_TEXT, busy_text
from bot.handoff.store import HandoffRequest, TicketStore
from bot.privacy.metadata import mask_values
from bot.privacy.secrets import asks_for_secret
from bot.security import rate_limit
from bot.security.api_guard import MAX_TOKEN_LIFETIME_SECONDS, check_api_request, check_api_token
from bot.security.clients import widget_address
from bot.security.rate_limit import (UNLIMITED, Caller, RateLimited, RateLimiter, RateLimitSettings, calling_from,
                                     check_new_session, check_new_ticket)

CARD = "6222 0212 3456 7890 128"


# -- metadata ----------------------------------------------------------------------------------

def test_metadata_up_to_4_kb_is_taken_above_is_413():
    assert checked_metadata(None) is None and checked_metadata({}) == {}
    fits = {"k": "x" * (MAX_METADATA_BYTES - len('{"k":""}'))}
    assert checked_metadata(fits) == fits
    with pytest.raises(PayloadError) as err:
        checked_metadata({"k": "x" * (MAX_METADATA_BYTES - len('{"k":""}') + 1)})
    assert err.value.status == 413 and "metadata 太大了" in err.value.message
    with pytest.raises(PayloadError) as err:  # counted in UTF-8 bytes: 1366 Chinese characters are 4098
        checked_metadata({"k": "钱" * 1366})
    assert err.value.status == 413


@pytest.mark.parametrize("metadata, status", [
    ("x", 400), ([1], 400), (5, 400), ({"a": "\ud800"}, 400), ({"a": [[[[[[[[[1]]]]]]]]]}, 400),
    ({"blob": "x" * 900_000}, 413),
])
def test_bad_metadata_is_refused_clearly(metadata, status):
    with pytest.raises(PayloadError) as err:
        parse_chat_payload({"sender": "a", "message": "hi", "metadata": metadata})
    assert err.value.status == status and "metadata" in err.value.message


def test_unknown_keys_are_kept_ours_are_dropped():
    assert checked_metadata({"app_version": "5.2", "masked": ["x"], "nested": {"masked": 1}}) == {
        "app_version": "5.2", "nested": {"masked": 1}}


def test_every_string_of_metadata_is_masked_keys_included():
    masked, kinds = mask_values({"card": CARD, "list": [{"13912345678": "邮箱 a.b@example.com"}], "n": 13912345678,
                                 "ok": True, "none": None, "plain": "iOS 17.2"})
    text = json.dumps(masked, ensure_ascii=False)
    assert "13912345678\"" not in text.split('"n"')[0] and "example.com" not in text and "62220212" not in text
    assert masked["card"] == "[卡号尾号0128]" and masked["n"] == 13912345678  # numbers are not text
    assert masked["ok"] is True and masked["none"] is None and masked["plain"] == "iOS 17.2"
    assert set(kinds) == {"card", "phone", "email"}


@pytest.mark.parametrize("raw, status", [
    ("{not json", 400), ("[" * 100_000, 413), ('"text"', 400), ("[1]", 400), (json.dumps({"k": "x" * 5000}), 413),
])
def test_socketio_metadata_as_json_text_is_checked_the_same(raw, status):
    with pytest.raises(PayloadError) as err:
        message_metadata(raw)
    assert err.value.status == status


def test_socketio_metadata_none_empty_or_an_object():
    assert message_metadata(None) is None and message_metadata("") is None
    assert message_metadata('{"app": "wallet"}') == {"app": "wallet"} == message_metadata({"app": "wallet"})


# -- limits ------------------------------------------------------------------------------------

@pytest.fixture
def limits(monkeypatch):
    """Small buckets, so the rules show in a few calls."""
    sessions, client, overall = RateLimiter(60, 2), RateLimiter(1, 2), RateLimiter(1, 3)
    monkeypatch.setattr(rate_limit, "rate_limit_settings", lambda: RateLimitSettings())
    monkeypatch.setattr(rate_limit, "session_limiter", lambda: sessions)
    monkeypatch.setattr(rate_limit, "ticket_client_limiter", lambda: client)
    monkeypatch.setattr(rate_limit, "ticket_overall_limiter", lambda: overall)
    return sessions, client, overall


def test_new_sessions_are_limited_per_address_but_not_for_trusted_back_ends(limits):
    for _ in range(2):
        check_new_session("198.51.100.1", "busy")
    with pytest.raises(RateLimited) as err:
        check_new_session("198.51.100.1", "busy")
    assert err.value.text == "busy" and err.value.retry_after > 0
    check_new_session("198.51.100.2", "busy")  # another address
    for _ in range(10):
        check_new_session(None, "busy")  # a trusted back end opens conversations for all its users


def tickets(caller, n):
    """How many of n new tickets the limits let through for this caller."""
    passed = 0
    for _ in range(n):
        try:
            if caller is None:
                check_new_ticket("busy")
            else:
                with calling_from(caller):
                    check_new_ticket("busy")
            passed += 1
        except RateLimited:
            pass
    return passed


def test_new_tickets_per_address_then_overall(limits):
    assert tickets(Caller("198.51.100.1"), 10) == 2  # per address (its 8 refused tries spend no overall budget)
    assert tickets(Caller("198.51.100.2"), 5) == 1  # the overall budget (3) has one left
    assert tickets(Caller("198.51.100.3"), 1) == 0  # everybody is refused now
    assert tickets(Caller(None), 5) == 0  # a trusted back end too: only the overall limit applies to it


def test_ticket_limits_apply_only_inside_a_channel_message(limits):
    assert tickets(Caller(None), 5) == 3  # the overall bucket
    assert tickets(UNLIMITED, 5) == 5  # the simulated day
    assert tickets(None, 5) == 5  # outside a channel message (Rasa's API with the admin JWT)


def test_widget_users_are_never_trusted_back_ends():
    assert widget_address("127.0.0.1", None) == "127.0.0.1"  # loopback without a header: counted
    assert widget_address("127.0.0.1", "198.51.100.7") == "198.51.100.7"
    assert widget_address("203.0.113.9", "10.0.0.1") == "203.0.113.9"  # a forged header from outside
    assert widget_address(None, None) == "unknown"


def test_a_refused_ticket_leaves_the_database_untouched(tmp_path):
    store = TicketStore(f"sqlite:///{tmp_path / 't.db'}")
    request = HandoffRequest("c1", "rest", "contact_human", None, None, ["转人工"], transcript=[("user", "转人工")])
    calls = []

    def refuse():
        calls.append(1)
        raise RateLimited("busy", 5)

    with pytest.raises(RateLimited):
        store.open_with_reply(request, lambda *_: ["opened"], refuse)
    assert store.queue() == [] and store.transcript("T-none") == []
    ticket, texts = store.open_with_reply(request, lambda t, created, _: ["opened" if created else "exists"], None)
    assert texts == ["opened"]
    again, texts = store.open_with_reply(request, lambda t, created, _: ["opened" if created else "exists"], refuse)
    assert texts == ["exists"] and again["number"] == ticket["number"] and len(calls) == 1  # reuse is free


def test_busy_messages_are_calm_point_to_help_and_ask_for_no_secret():
    faq = shared_store().get()
    text = busy_text(faq)
    assert text.startswith("现在转人工的请求较多") and "96110" in text and "{" not in text
    for message in (DEFAULT_BUSY_TEXT, DEFAULT_SESSIONS_BUSY_TEXT):
        assert asks_for_secret(message) is None


# -- Rasa's HTTP API guard ----------------------------------------------------------------------

SECRET = "s3cret"
NOW = int(time.time())  # PyJWT checks exp against the real clock
ADMIN = {"user": {"username": "dev", "role": "admin"}}


def bearer(claims, key=SECRET, algorithm="HS256"):
    return "Bearer " + jwt.encode(claims, key, algorithm=algorithm)


@pytest.mark.parametrize("authorization, why", [
    (bearer(ADMIN, key="", algorithm="none"), "HS256"),
    (bearer({**ADMIN, "exp": NOW + 3600}, algorithm="HS512"), "HS256"),
    (bearer(ADMIN), "缺少 exp"),
    (bearer({**ADMIN, "exp": NOW + MAX_TOKEN_LIFETIME_SECONDS + 3600}), "有效期太长"),
    (bearer({**ADMIN, "exp": NOW - 3600}), "已过期"),
    (bearer({**ADMIN, "exp": NOW + 3600}, key="guess"), "签名无效"),
    (bearer({"user": "admin", "exp": NOW + 3600}), "user"),
    (bearer({"exp": NOW + 3600}), "user"),
    ("Bearer not.a.jwt", "不是有效的 JWT"), ("Bearer ", "Bearer"), ("Basic eDp5", "Bearer"),
])
def test_api_tokens_that_are_not_hs256_with_a_short_exp_are_401(authorization, why):
    status, message = check_api_token("/conversations/x/tracker", authorization, SECRET, now=NOW) or (None, "")
    assert status == 401 and why in message, message


def test_good_tokens_and_what_the_guard_does_not_look_at():
    good = bearer({**ADMIN, "iat": NOW, "exp": NOW + 3600})
    assert check_api_token("/status", good, SECRET, now=NOW) is None
    junk = bearer(ADMIN, key="", algorithm="none")
    assert check_api_token("/webhooks/rest/webhook", junk, SECRET, now=NOW) is None  # our channels
    assert check_api_token("/", junk, SECRET, now=NOW) is None  # Rasa's unprotected routes
    assert check_api_token("/status", junk, None, now=NOW) is None  # Rasa without --jwt-secret
    assert check_api_token("/status", None, SECRET, now=NOW) is None  # no token: Rasa answers 401


def test_the_api_token_we_issue_passes():
    from bot.security.tokens import api_token, jwt_secret

    assert check_api_token("/status", f"Bearer {api_token('developer')}", jwt_secret()) is None


def _events(events, slots=None):
    return check_api_request("POST", "/conversations/c/tracker/events", "application/json",
                             json.dumps(events).encode(), slots=slots)


@pytest.mark.parametrize("event", [
    {"event": "user"}, {"event": "user", "text": 5}, {"event": "nonsense"}, {"event": "action"},
    {"event": "reminder"}, {"event": "user", "text": "hi", "parse_data": 5},
    {"event": "user", "text": "hi", "parse_data": {"intent": "greet", "entities": []}},
    {"event": "user", "text": "hi", "parse_data": {"intent": {"name": "greet"}, "entities": [5]}},
    {"event": "bot", "text": 5}, {"event": "bot", "text": "x", "data": 5}, {"event": "bot", "text": "x", "metadata": 5},
    {"event": "action", "name": 5}, {"event": "action_execution_rejected", "name": 5},
    {"event": "bot", "text": "x", "timestamp": "noon"}, {"event": "slot", "name": ["x"], "value": 1},
])
def test_tracker_events_rasa_cannot_read_are_400(event):
    problem = _events([event])
    assert problem is not None and problem[0] == 400, event


@pytest.mark.parametrize("events", [
    [{"event": "bot", "text": "人工客服：您好", "metadata": {"from": "agent"}}],
    [{"event": "resume"}, {"event": "action", "name": "action_listen"}],
    [{"event": "user", "text": "你好", "parse_data": {"intent": {"name": "greet", "confidence": 1.0}, "entities": []}}],
    [{"event": "user", "text": "你好", "parse_data": {"intent": {}, "entities": []}}],
    [{"event": "slot", "name": "last_topic", "value": "refund"}],
    {"event": "pause"},
])
def test_well_formed_events_pass(events):
    assert _events(events) is None


def test_execute_of_an_action_the_domain_does_not_have_is_400():
    names = ["action_listen", "action_handoff"]

    def execute(body):
        return check_api_request("POST", "/conversations/c/execute", "application/json", json.dumps(body).encode(),
                                 action_names=names)

    assert execute({"name": "action_handoff"}) is None
    assert execute({"name": "nope"})[0] == 400 and "domain" in execute({"name": "nope"})[1]
    assert execute({"name": "action_listen", "confidence": "x"})[0] == 400
    assert execute({"name": "action_listen", "policy": 5})[0] == 400


@pytest.mark.parametrize("parse_data", [5, "x", [], {"intent": 5}, {"intent": {"name": 5}, "entities": []},
                                        {"intent": {"name": "greet"}}, {"intent": {"name": "greet"}, "entities": 5},
                                        {"intent": {"name": "greet", "confidence": "high"}, "entities": []},
                                        {"intent": {"name": "greet"}, "entities": [{"entity": 5, "value": 1}]}])
def test_messages_with_a_parse_data_that_is_not_an_nlu_result_are_400(parse_data):
    body = {"text": "hi", "sender": "user", "parse_data": parse_data}
    problem = check_api_request("POST", "/conversations/c/messages", "application/json", json.dumps(body).encode())
    assert problem is not None and problem[0] == 400 and "parse_data" in problem[1]


def test_messages_with_an_nlu_result_pass():
    body = {"text": "hi", "sender": "user",
            "parse_data": {"intent": {"name": "greet", "confidence": 1.0}, "entities": [{"entity": "a", "value": 1}]}}
    assert check_api_request("POST", "/conversations/c/messages", "application/json", json.dumps(body).encode()) is None


def test_json_on_rasas_training_and_test_routes():
    assert check_api_request("POST", "/model/train", "application/json", b'{"x": 1}')[0] == 400
    assert check_api_request("POST", "/model/test/intents", "application/json", b'{"x": 1}')[0] == 400
    assert check_api_request("POST", "/model/test/intents", "application/json",
                             b'{"rasa_nlu_data": {"common_examples": []}}') is None
    assert check_api_request("POST", "/model/train", "application/x-yaml", b"version: '3.1'") is None


# -- nginx -------------------------------------------------------------------------------------

def test_every_nginx_location_says_who_the_user_is():
    from bot.devtools.cluster import nginx_conf

    conf = nginx_conf(ROOT / "var", "127.0.0.1", 8080, [5005, 5006])
    locations = re.findall(r"location ([^{\n]+?) \{(.*?)\n        \}", conf, re.S)
    assert {path for path, _ in locations} == {"/socket.io/", "= /webhooks/rest/webhook", "/", "@rest_unavailable"}
    for path, block in locations:
        if "proxy_pass" not in block:
            assert path == "@rest_unavailable" and "return 503" in block  # answers itself, proxies nothing
            continue
        assert "proxy_set_header X-Forwarded-For $remote_addr;" in block, path
        assert "proxy_set_header X-Real-IP $remote_addr;" in block, path
