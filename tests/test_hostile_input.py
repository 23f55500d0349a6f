"""Hostile input on every endpoint of the Rasa server and the agent console: each bad request
gets a clear 4xx with no stack trace, nothing crashes, and other conversations go on."""
from __future__ import annotations

import asyncio
import os
import uuid

import pytest
import requests

from bot.handoff.agents import AgentStore
from bot.security.tokens import api_headers
from tests.conftest import require_model
from tests.servers import running_assistant

pytestmark = [pytest.mark.server, pytest.mark.model]
DEEP = b"[" * 200_000 + b"]" * 200_000
DEEP_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    require_model()
    with running_assistant(tmp_path_factory.mktemp("hostile")) as urls:
        AgentStore(urls["db_url"]).add("小王", "password123")
        bystander = f"u-{uuid.uuid4().hex[:8]}"
        reply = requests.post(f"{urls['rasa']}/webhooks/rest/webhook",
                              json={"sender": bystander, "message": "退款一般几天到账"}, timeout=60)
        assert reply.status_code == 200
        yield {**urls, "bystander": bystander}


def clean_4xx(response: requests.Response, *codes: int) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if codes:
        assert response.status_code in codes, (response.status_code, response.text[:300])
    assert "Traceback" not in response.text and 'File "' not in response.text


REST_BODIES = [
    (b"{", 400), (b"", 400), (b"null", 400), (b"[]", 400), (b'"text"', 400),
    (b'{"sender": 1, "message": "hi"}', 400), (b'{"sender": "a", "message": ["hi"]}', 400),
    (b'{"sender": "a", "message": {"text": "hi"}}', 400), (b'{"sender": "a"}', 400), (b'{"message": "hi"}', 400),
    (b'{"sender": "a", "message": "hi", "metadata": "x"}', 400), (b'{"sender": "a\\u0000b", "message": "hi"}', 400),
    (b'{"sender": "' + b"x" * 500 + b'", "message": "hi"}', 400),
    ('{"sender": "a", "message": "\\ud800"}'.encode(), 400),
    (b'{"sender": "a", "message": "\xff\xfe\xfd"}', 400), (b"\xef\xbb\xbf\xff", 400),
    (DEEP, 400), (DEEP_OBJECT, 400),
    (b'{"sender": "a", "message": "' + "退".encode() * 40_000 + b'"}', 413),
    (b"x" * (2 * 1024 * 1024), 413),
]


@pytest.mark.parametrize("body, status", REST_BODIES, ids=range(len(REST_BODIES)))
def test_rest_webhook_refuses_bad_bodies_clearly(env, body, status):
    r = requests.post(f"{env['rasa']}/webhooks/rest/webhook", data=body,
                      headers={"Content-Type": "application/json"}, timeout=60)
    clean_4xx(r, status)


@pytest.mark.parametrize("body", [b"{", DEEP, b'{"sender": 5}', b"\xff", b"[1]"], ids=range(5))
def test_rest_poll_refuses_bad_bodies_clearly(env, body):
    clean_4xx(requests.post(f"{env['rasa']}/webhooks/rest/poll", data=body, timeout=30), 400)


def test_invisible_and_rtl_characters_still_get_an_answer(env):
    r = requests.post(f"{env['rasa']}/webhooks/rest/webhook", timeout=60, json={
        "sender": f"u-{uuid.uuid4().hex[:8]}", "message": "\u202e退\u200b款\u200d一般\u2066几天\ufeff到账\u200f"})
    assert r.status_code == 200 and "工作日" in r.json()[0]["text"]


def test_a_single_100_kb_message_is_413_with_a_chinese_explanation(env):
    r = requests.post(f"{env['rasa']}/webhooks/rest/webhook", timeout=60,
                      json={"sender": "u-big", "message": "钱" * 100_000})
    clean_4xx(r, 413)
    assert "消息太长" in r.json()["error"]


@pytest.mark.parametrize("path", [
    "/webhooks/socketio/../../../../etc/passwd", "/webhooks/socketio/..%2f..%2f..%2fetc%2fpasswd",
    "/webhooks/socketio/%2e%2e%2fconfig.yml", "/webhooks/socketio/widget.js%00.png", "/../credentials.yml",
    "/webhooks/socketio/....//....//etc/passwd",
])
def test_no_path_reaches_the_disk(env, path):
    r = requests.get(f"{env['rasa']}{path}", timeout=10)
    assert r.status_code in (400, 404), (path, r.status_code)
    assert "root:" not in r.text and "access_token" not in r.text


@pytest.mark.parametrize("path", ["/static/../app.py", "/static/..%2fapp.py", "/static/%2e%2e%2f%2e%2e%2fpaths.py",
                                  "/api/tickets/..%2f..%2fetc%2fpasswd", "/static/console.js%00"])
def test_console_has_no_path_traversal(env, path):
    r = requests.get(f"{env['console']}{path}", timeout=10)
    assert r.status_code in (400, 401, 404), (path, r.status_code)
    assert "import" not in r.text


@pytest.mark.parametrize("body, status", [
    (b"{", 400), (b"[]", 400), (DEEP, 413), (DEEP[:20_000] + DEEP[-20_000:], 400),
    (b'{"name": 1, "password": []}', 400), (b'{"name": "a"}', 400),
    (b"\xff\xfe", 400), (b'{"name": "' + b"x" * 100 + b'", "password": "p"}', 400), (b"x" * 100_000, 413),
], ids=range(9))
def test_console_login_refuses_bad_bodies_clearly(env, body, status):
    clean_4xx(requests.post(f"{env['console']}/api/login", data=body, timeout=10), status)


def test_console_api_refuses_bad_bodies_clearly(env):
    r = requests.post(f"{env['console']}/api/login", json={"name": "小王", "password": "password123"}, timeout=10)
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    for body in (b"{", DEEP, b'{"text": 5}', b'{"text": ""}', b"[]", b"\xff"):
        clean_4xx(requests.post(f"{env['console']}/api/tickets/T-NOPE/reply", data=body, headers=auth, timeout=10))
    clean_4xx(requests.get(f"{env['console']}/api/tickets/" + "x" * 5000, headers=auth, timeout=10))


# --- issue 16, round two (findings 6 and 7): the console's inputs that gave 500s --------------

LONE = '"\\ud800"'  # the JSON text of a lone surrogate
CONSOLE_LOGIN_HOSTILE = [
    '{"name": "%s", "password": ' + LONE + '}', '{"name": "%s", "password": "\\udfff\\ud800"}',
    '{"name": "%s", "password": "a\\u0000b"}', '{"name": "%s", "password": 5}', '{"name": "%s", "password": null}',
    '{"name": "%s", "password": ""}', '{"name": "%s\\ud800", "password": "x"}', '{"name": "%s\\u0000", "password": "x"}',
    '{"name": ["%s"], "password": "x"}',
]


@pytest.mark.parametrize("template", CONSOLE_LOGIN_HOSTILE, ids=range(len(CONSOLE_LOGIN_HOSTILE)))
def test_console_login_hostile_passwords_are_the_same_400_for_real_and_unknown_names(env, template):
    real = f"hostile-{uuid.uuid4().hex[:8]}"
    AgentStore(env["db_url"]).add(real, "password123")
    answers = []
    for name in (real, f"nobody-{uuid.uuid4().hex[:8]}"):
        r = requests.post(f"{env['console']}/api/login", data=(template % name).encode(), timeout=10)
        clean_4xx(r, 400)
        answers.append(r.json()["error"])
    assert answers[0] == answers[1]


@pytest.mark.parametrize("body", [b"\xff\xfe{\x00}\x00", b"\xef\xbb\xbf{}", b'{"name": "\xe5\xb0", "password": "x"}',
                                  b'{"name": "a", "password": "\xed\xa0\x80"}'], ids=range(4))
def test_console_login_refuses_other_encodings_clearly(env, body):
    clean_4xx(requests.post(f"{env['console']}/api/login", data=body, timeout=10), 400)


CONSOLE_ROUTES = [
    ("/api/tickets/T-NOPE/reply", "text"), ("/api/tickets/T-NOPE/close", "note"),
    ("/api/tickets/T-NOPE/transfer", "agent"), ("/api/notices", "text"), ("/api/notices", "until"),
    ("/api/notices", "topic"), ("/api/notices", "starts_at"), ("/api/faq/examples", "text"),
    ("/api/faq/phrasings", "question_id"), ("/api/faq/drafts", "answer"), ("/api/faq/changes/1/rollback", "force"),
    ("/api/faq/retrain", "full"),
]
HOSTILE_VALUES = [LONE, '"x\\u0000y"', '{"\\ud800": 1}', "[" + LONE + "]", "5.5", '{"a": []}']


@pytest.mark.parametrize("path, field", CONSOLE_ROUTES, ids=[f"{p}:{f}" for p, f in CONSOLE_ROUTES])
def test_console_routes_refuse_hostile_values_clearly(env, path, field):
    r = requests.post(f"{env['console']}/api/login", json={"name": "小王", "password": "password123"}, timeout=10)
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    others = {k: v for k, v in {"text": '"维护"', "until": '"+1h"'}.items() if k != field}
    bodies = ["{" + ", ".join([f'"{field}": {value}'] + [f'"{k}": {v}' for k, v in others.items()]) + "}"
              for value in HOSTILE_VALUES]
    bodies = [b.encode() for b in bodies] + [b"\xff", b"\xed\xa0\x80", b"[]", b'"text"', b"null", b"\xff\xfe{\x00}\x00"]
    for body in bodies:
        r = requests.post(f"{env['console']}{path}", data=body, headers=auth, timeout=30)
        clean_4xx(r, 400)


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/api/dashboard?since=0001-01-01&until=9999-12-31", 400), ("GET", "/api/dashboard?until=9999-12-31", 400),
    ("GET", "/api/dashboard?since=2026-01-01T00:00-23:59&until=9999-12-31T23:59-23:00", 400),
    ("GET", "/api/dashboard/report.html?since=0001-01-01", 400), ("GET", "/api/dashboard/chart/daily.png?since=1", 400),
    ("DELETE", "/api/notices/" + "9" * 30, 404), ("POST", "/api/faq/changes/" + "9" * 30 + "/rollback", 404),
], ids=range(7))
def test_console_dates_and_numbers_out_of_range_are_clean(env, method, path, status):
    r = requests.post(f"{env['console']}/api/login", json={"name": "小王", "password": "password123"}, timeout=10)
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    clean_4xx(requests.request(method, f"{env['console']}{path}", headers=auth, timeout=30), status)


@pytest.mark.parametrize("scheme", ["Basic eDp4", "Digest x", "Token t", "Bearer"], ids=range(4))
def test_console_cookie_with_another_authorization_scheme_still_needs_csrf(env, scheme):
    session = requests.Session()
    session.post(f"{env['console']}/api/login", json={"name": "小王", "password": "password123"}, timeout=10)
    r = session.post(f"{env['console']}/api/notices", headers={"Authorization": scheme}, timeout=10,
                     json={"topic": "all", "text": "维护中", "until": "+1h"})
    clean_4xx(r, 403)


def test_console_notice_with_a_look_alike_link_is_refused(env):
    r = requests.post(f"{env['console']}/api/login", json={"name": "小王", "password": "password123"}, timeout=10)
    r = requests.post(f"{env['console']}/api/notices", headers={"Authorization": f"Bearer {r.json()['token']}"},
                      json={"topic": "all", "text": "请到 https://alipay-secure.com/verify 验证", "until": "+1h"},
                      timeout=10)
    clean_4xx(r, 400)
    assert "alipay-secure.com" in r.json()["error"]


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/model/parse", b"{"), ("POST", "/model/parse", b'{"text": 5}'), ("POST", "/model/parse", DEEP),
    ("POST", "/model/parse", b"\xff"), ("POST", "/conversations/x/tracker/events", b"{"),
    ("POST", "/conversations/x/tracker/events", b'[{"event": "nonsense"}]'),
    ("POST", "/conversations/x/messages", b'{"text": 1}'), ("POST", "/conversations/x/trigger_intent", b"[]"),
    ("PUT", "/conversations/x/tracker/events", b'"x"'), ("POST", "/model/parse", b"x" * (2 * 1024 * 1024)),
], ids=range(10))
def test_rasa_http_api_refuses_bad_bodies_clearly(env, method, path, body):
    r = requests.request(method, f"{env['rasa']}{path}", data=body, timeout=60,
                         headers={**api_headers(), "Content-Type": "application/json"})
    clean_4xx(r)


def test_socketio_survives_junk_events(env):
    import socketio

    async def scenario():
        client, got = socketio.AsyncClient(), asyncio.Queue()
        client.on("bot_uttered", got.put)
        session = asyncio.Event()
        client.on("session_token", lambda *_: session.set())
        await client.connect(env["rasa"], socketio_path="/socket.io", transports=["polling"])
        try:
            await client.emit("user_uttered", {"message": "你好"})  # before any session: refused politely
            first = await asyncio.wait_for(got.get(), 15)
            for junk in (None, 5, "text", [1, 2], {"message": 5}, {"message": "x" * 30_000},
                         {"message": "你好", "metadata": "[" * 100_000}, {"message": ["a"]}):
                await client.emit("session_request", junk)
                await client.emit("user_uttered", junk)
            await asyncio.wait_for(session.wait(), 15)
            while not got.empty():
                got.get_nowait()
            await client.emit("user_uttered", {"message": "退款一般几天到账"})
            answers = [await asyncio.wait_for(got.get(), 30) for _ in range(2)]
            return first, answers
        finally:
            await client.disconnect()

    first, answers = asyncio.run(scenario())
    assert "刷新" in first["text"]
    assert any("工作日" in a.get("text", "") for a in answers)


def test_other_conversations_are_unaffected(env):
    """Run last in this module: after all of the above, the server still answers and the
    bystander's conversation is whole."""
    r = requests.post(f"{env['rasa']}/webhooks/rest/webhook", json={"sender": env["bystander"], "message": "/affirm"},
                      timeout=60)
    assert r.status_code == 200 and "太好了" in r.json()[0]["text"]
    tracker = requests.get(f"{env['rasa']}/conversations/{env['bystander']}/tracker", headers=api_headers(),
                           timeout=30).json()
    assert [e["text"] for e in tracker["events"] if e["event"] == "user"] == ["退款一般几天到账", "/affirm"]
    for pid in (env["rasa_pid"],):
        os.kill(pid, 0)  # still running


def _listening_addresses(port: int):
    """Local addresses with a listening TCP socket on this port (from /proc/net/tcp{,6})."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as handle:
            for line in handle.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


def test_servers_listen_on_loopback_only(env):
    import re
    from urllib.parse import urlparse

    endpoints = open(os.path.join(env["workdir"], "endpoints.yml"), encoding="utf-8").read()
    action_port = int(re.search(r"127\.0\.0\.1:(\d+)/webhook", endpoints).group(1))
    for url_port in (urlparse(env["rasa"]).port, urlparse(env["console"]).port, action_port):
        addresses = _listening_addresses(url_port)
        assert addresses and addresses <= {"0100007F", "00000000000000000000000001000000"}, (url_port, addresses)


def test_socketio_refuses_pages_of_other_origins(env):
    handshake = f"{env['rasa']}/socket.io/?EIO=4&transport=polling"
    assert requests.get(handshake, headers={"Origin": "https://evil.example"}, timeout=10).status_code == 400
    same = requests.get(handshake, headers={"Origin": env["rasa"]}, timeout=10)
    assert same.status_code == 200 and '"sid"' in same.text


# -- Trust, round two (issue 16: findings 3, 5, 7): metadata, Rasa's own API, its JWTs ---------

METADATA_BODIES = [
    (b'{"sender": "a", "message": "hi", "metadata": {"blob": "' + b"x" * 5000 + b'"}}', 413),
    (b'{"sender": "a", "message": "hi", "metadata": {"blob": "' + b"x" * 900_000 + b'"}}', 413),
    (b'{"sender": "a", "message": "hi", "metadata": {"k": "' + "钱".encode() * 2000 + b'"}}', 413),
    (b'{"sender": "a", "message": "hi", "metadata": ' + b'{"a":' * 20 + b"1" + b"}" * 20 + b"}", 400),
    (b'{"sender": "a", "message": "hi", "metadata": {"a": "\\ud800"}}', 400),
    (b'{"sender": "a", "message": "hi", "metadata": [1, 2]}', 400),
    (b'{"sender": "a", "message": "hi", "metadata": 5}', 400),
]


@pytest.mark.parametrize("body, status", METADATA_BODIES, ids=range(len(METADATA_BODIES)))
def test_rest_refuses_bad_metadata_clearly(env, body, status):
    r = requests.post(f"{env['rasa']}/webhooks/rest/webhook", data=body,
                      headers={"Content-Type": "application/json"}, timeout=60)
    clean_4xx(r, status)
    assert "metadata" in r.json()["error"]


RASA_API_ROUND_TWO = [
    ("PUT", "/conversations/x/tracker/events", b'[{"event": "user"}]'),
    ("POST", "/conversations/x/tracker/events", b'[{"event": "user"}]'),
    ("POST", "/conversations/x/tracker/events", b'{"event": "user", "text": 5}'),
    ("POST", "/conversations/x/tracker/events?execute_side_effects=true&output_channel=rest",
     b'[{"event": "bot", "text": "x", "data": 5}]'),
    ("POST", "/conversations/x/tracker/events", b'[{"event": "action_execution_rejected", "name": 5}]'),
    ("POST", "/conversations/x/tracker/events", b'[{"event": "bot", "text": "x", "timestamp": "noon"}]'),
    ("PUT", "/conversations/x/tracker/events", b'[{"event": "reminder"}]'),
    ("PUT", "/conversations/x/tracker/events",
     b'[{"event": "user", "text": "hi", "parse_data": {"intent": "greet", "entities": []}}]'),
    ("POST", "/conversations/x/execute", b'{"name": "action_that_does_not_exist"}'),
    ("POST", "/conversations/x/execute", b'{"name": "action_listen", "confidence": "high"}'),
    ("POST", "/conversations/x/messages", b'{"text": "hi", "sender": "user", "parse_data": 5}'),
    ("POST", "/conversations/x/messages", b'{"text": "hi", "sender": "user", "parse_data": {"intent": 5}}'),
    ("POST", "/conversations/x/messages",
     b'{"text": "hi", "sender": "user", "parse_data": {"intent": {"name": "greet"}, "entities": [5]}}'),
    ("POST", "/conversations/x/trigger_intent", b'{"name": "greet", "entities": 5}'),
    ("POST", "/model/test/intents", b'{"x": 1}'),
    ("POST", "/model/train", b'{"x": 1}'),
]


@pytest.mark.parametrize("method, path, body", RASA_API_ROUND_TWO, ids=range(len(RASA_API_ROUND_TWO)))
def test_rasa_http_api_refuses_what_rasa_cannot_use_with_a_400(env, method, path, body):
    """Well-formed JSON Rasa 3.6 answered with a 500 (or stored and then failed on)."""
    conversation = f"h-{uuid.uuid4().hex[:8]}"
    requests.post(f"{env['rasa']}/webhooks/rest/webhook", json={"sender": conversation, "message": "你好"}, timeout=60)
    r = requests.request(method, f"{env['rasa']}{path.replace('/x/', f'/{conversation}/')}", data=body, timeout=60,
                         headers={**api_headers(), "Content-Type": "application/json"})
    clean_4xx(r, 400)
    after = requests.post(f"{env['rasa']}/webhooks/rest/webhook", timeout=60,
                          json={"sender": conversation, "message": "退款一般几天到账"})
    assert after.status_code == 200 and "工作日" in after.json()[0]["text"]  # the conversation goes on


def _jwt(claims, key="", algorithm="none"):
    import jwt

    return jwt.encode(claims, key, algorithm=algorithm)


def _hostile_tokens():
    import time

    from bot.security.tokens import jwt_secret

    admin, now = {"user": {"username": "x", "role": "admin"}}, int(time.time())
    return {
        "alg none": _jwt(admin), "alg none with exp": _jwt({**admin, "exp": now + 60}),
        "HS512": _jwt({**admin, "exp": now + 60}, jwt_secret(), "HS512"),
        "no exp": _jwt(admin, jwt_secret(), "HS256"), "a week": _jwt({**admin, "exp": now + 7 * 86400}, jwt_secret(), "HS256"),
        "user a string": _jwt({"user": "admin", "exp": now + 60}, jwt_secret(), "HS256"),
        "junk": "eyJhbGciOiJub25lIn0.e30.", "empty": "",
    }


@pytest.mark.parametrize("path", ["/status", "/domain", "/conversations/x/tracker", "/conversations/x/story"])
@pytest.mark.parametrize("name", ["alg none", "alg none with exp", "HS512", "no exp", "a week", "user a string", "junk",
                                  "empty"])
def test_rasa_http_api_refuses_hostile_tokens_with_a_401(env, path, name):
    r = requests.get(f"{env['rasa']}{path}", headers={"Authorization": f"Bearer {_hostile_tokens()[name]}"}, timeout=10)
    clean_4xx(r, 401)


@pytest.mark.parametrize("metadata", [{"blob": "x" * 900_000}, "[" * 100_000, "{not json", [1, 2], 5],
                         ids=range(5))
def test_socketio_refuses_bad_metadata_with_a_message(env, metadata):
    import socketio

    async def scenario():
        client, got, session = socketio.AsyncClient(), asyncio.Queue(), asyncio.Queue()
        client.on("bot_uttered", got.put)
        client.on("session_token", session.put)
        await client.connect(env["rasa"], socketio_path="/socket.io", transports=["polling"],
                             headers={"X-Forwarded-For": "198.51.100.140"})  # its own address, as nginx sends it
        try:
            await client.emit("session_request", {})
            issued = await asyncio.wait_for(session.get(), 15)
            await client.emit("user_uttered", {"message": "你好", "metadata": metadata})
            return issued, await asyncio.wait_for(got.get(), 15)
        finally:
            await client.disconnect()

    issued, refusal = asyncio.run(scenario())
    assert refusal["text"].startswith("消息未发送：") and "metadata" in refusal["text"]
    tracker = requests.get(f"{env['rasa']}/conversations/{issued['session_id']}/tracker", headers=api_headers(),
                           timeout=30).json()
    assert not [e for e in tracker["events"] if e["event"] == "user"]  # nothing stored, nothing lost silently


def test_the_server_still_answers_after_round_two(env):
    """After the round-two cases above: the server is up and answers a new conversation."""
    r = requests.post(f"{env['rasa']}/webhooks/rest/webhook", timeout=60,
                      json={"sender": f"u-{uuid.uuid4().hex[:8]}", "message": "退款一般几天到账"})
    assert r.status_code == 200 and "工作日" in r.json()[0]["text"]
    os.kill(env["rasa_pid"], 0)
