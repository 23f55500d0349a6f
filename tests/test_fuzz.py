"""Property-based tests of the parsers every request goes through, and a time-bounded mutation
fuzz run over them (FUZZ_SECONDS, default 20): each parser either returns its result or raises
its own clear error, never anything else."""
from __future__ import annotations

import json
import os
import random
import time
from types import SimpleNamespace

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.channels.payload import ChatPayload, PayloadError, parse_chat_payload
from bot.channels.rest import _json_body
from bot.channels.telegram import _chat_id, inline_keyboard, split_text
from bot.channels.wechat_xml import XmlError, parse_wechat_xml
from bot.faq.model import Faq, FaqError, parse_faq
from bot.config import faq_path
from bot.security.api_guard import check_api_request
from bot.text import MAX_NLU_CHARS, normalize_text

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(st.one_of(st.text(max_size=500), st.none(), st.integers(), st.binary(max_size=50)))
@FAST
def test_normaliser_always_gives_short_clean_text(value):
    text = normalize_text(value)
    assert isinstance(text, str) and len(text) <= MAX_NLU_CHARS
    assert not any(ch in text for ch in "\u200b\u200d\u202e\ufeff\x00")
    assert text == text.strip()


@given(json_values)
@FAST
def test_chat_payload_parser_accepts_or_refuses_clearly(value):
    try:
        payload = parse_chat_payload(value)
    except PayloadError as err:
        assert err.status in (400, 413) and err.message
    else:
        assert isinstance(payload, ChatPayload) and payload.sender and isinstance(payload.message, str)


@given(st.binary(max_size=300))
@FAST
def test_rest_body_reader_on_any_bytes(body):
    try:
        _json_body(SimpleNamespace(body=body))
    except PayloadError as err:
        assert err.status == 400


@given(st.binary(max_size=400) | st.text(max_size=400).map(lambda t: f"<xml>{t}</xml>"))
@FAST
def test_wechat_xml_parser_on_any_input(data):
    try:
        fields = parse_wechat_xml(data)
    except XmlError:
        return
    assert isinstance(fields, dict) and all(isinstance(v, str) for v in fields.values())


@given(st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
       st.sampled_from(["/model/parse", "/conversations/a/messages", "/conversations/a/tracker/events",
                        "/conversations/a/trigger_intent", "/conversations/a/execute", "/status", "/webhooks/rest/webhook"]),
       st.sampled_from(["application/json", "text/plain", "", "application/x-yaml"]),
       st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
@FAST
def test_api_guard_on_any_request(method, path, content_type, body):
    problem = check_api_request(method, path, content_type, body)
    assert problem is None or (problem[0] == 400 and problem[1])


@given(st.text(max_size=10_000), st.integers(10, 4096))
@FAST
def test_telegram_split_keeps_every_chunk_within_the_limit(text, limit):
    chunks = split_text(text, limit)
    assert all(len(c.encode("utf-16-le")) // 2 <= limit for c in chunks)
    assert "".join(chunks).replace(" ", "").replace("\n", "") == text.strip().replace(" ", "").replace("\n", "")


@given(json_values)
@FAST
def test_telegram_helpers_on_any_update(value):
    if isinstance(value, dict):
        try:
            _chat_id(value)
        except (AttributeError, TypeError):
            pytest.fail("a malformed update must not raise")
    buttons = [b for b in (value if isinstance(value, list) else []) if isinstance(b, dict)]
    keyboard = inline_keyboard(buttons)
    assert all(len(row[0]["callback_data"].encode()) <= 64 for row in keyboard["inline_keyboard"])


REAL_FAQ = yaml.safe_load(faq_path().read_text(encoding="utf-8"))


def _mutated(rng: random.Random, value, depth=0):
    """The real FAQ with random fields dropped, retyped or replaced (what a hurried edit does)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            roll = rng.random()
            if roll < 0.03:
                continue
            out[key] = rng.choice([None, 5, [], "", "x{", ["a"]]) if roll < 0.06 else _mutated(rng, item, depth + 1)
        return out
    if isinstance(value, list) and rng.random() < 0.05:
        return value + [rng.choice(["nonexistent_topic", 3, None])]
    return value


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=150, deadline=None)
def test_faq_loader_refuses_broken_edits_clearly(seed):
    try:
        faq = parse_faq(faq_path(), _mutated(random.Random(seed), REAL_FAQ))
    except FaqError as err:
        assert str(faq_path()) in str(err)
    else:
        assert isinstance(faq, Faq)


@given(json_values)
@FAST
def test_faq_loader_on_any_structure(value):
    try:
        parse_faq(faq_path(), value)
    except FaqError:
        pass


# -- the time-bounded mutation fuzz run --------------------------------------------------------------

SEEDS = [
    b'{"sender": "u1", "message": "\xe9\x80\x80\xe6\xac\xbe\xe5\xa4\x9a\xe4\xb9\x85\xe5\x88\xb0\xe8\xb4\xa6", "metadata": {"a": 1}}',
    b"<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>"
    b"<CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>1</MsgId></xml>",
    b'{"update_id": 1, "message": {"message_id": 1, "chat": {"id": 5, "type": "private"}, "text": "hi"}}',
    b'[{"event": "bot", "text": "hi", "data": {"buttons": [{"title": "a", "payload": "/affirm"}]}}]',
]
_TOKENS = [b"{", b"}", b"[", b"]", b'"', b"\\", b"\x00", b"\xff", b"<", b">", b"<!DOCTYPE x [<!ENTITY a 'b'>]>",
           b"&a;", b"\\ud800", b"\xe2\x80\xae", b"9" * 30, b"-1e999", b"null", b"[" * 2000]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        roll, at = rng.random(), rng.randint(0, len(data))
        if roll < 0.3 and data:
            del data[at:at + rng.randint(1, 8)]
        elif roll < 0.6:
            data[at:at] = rng.choice(_TOKENS)
        elif data:
            data[min(at, len(data) - 1)] = rng.randint(0, 255)
    return bytes(data)


def _run_parsers(body: bytes) -> None:
    try:
        parse_chat_payload(_json_body(SimpleNamespace(body=body)))
    except PayloadError:
        pass
    try:
        parse_wechat_xml(body)
    except XmlError:
        pass
    for path in ("/model/parse", "/conversations/x/tracker/events", "/conversations/x/messages"):
        check_api_request("POST", path, "application/json", body)
    try:
        update = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return
    if isinstance(update, dict):
        _chat_id(update)


def test_time_bounded_fuzz_run_over_the_request_parsers():
    budget = float(os.environ.get("FUZZ_SECONDS", "20"))
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "0")) or None)
    deadline, runs = time.monotonic() + budget, 0
    while time.monotonic() < deadline:
        body = _mutate(rng, rng.choice(SEEDS))
        try:
            _run_parsers(body)
        except Exception as exc:  # anything else is a crash the server would turn into a 5xx
            pytest.fail(f"{type(exc).__name__} on {body[:200]!r}")
        runs += 1
    print(f"fuzz: {runs} inputs in {budget:.0f} s, no crash")
    assert runs > 100
