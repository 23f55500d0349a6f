"""The agent console over HTTP with the real Rasa and action servers: auth, claim races,
replies reaching the user, close → resume → rating, cancel, 20 users at once, restart."""
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bot.security.tokens import api_headers
from bot.handoff.agents import AgentStore
from bot.handoff.store import TicketStore
from tests.conftest import require_model
from tests.servers import running_assistant

pytestmark = [pytest.mark.server, pytest.mark.model]
PASSWORD = "s3cret-pass"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    require_model()
    with running_assistant(tmp_path_factory.mktemp("console")) as urls:
        agents = AgentStore(urls["db_url"])
        for name in ("小王", "小李", *[f"agent{i}" for i in range(20)]):
            agents.add(name, PASSWORD)
        yield urls


def chat(env, sender, message):
    r = requests.post(f"{env['rasa']}/webhooks/rest/webhook", json={"sender": sender, "message": message}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def texts(replies):
    return "\n".join(m.get("text", "") for m in replies)


def login(env, name="小王"):
    r = requests.post(f"{env['console']}/api/login", json={"name": name, "password": PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def api(env, method, path, headers, **kw):
    return requests.request(method, f"{env['console']}{path}", headers=headers, timeout=30, **kw)


def hand_off(env, user):
    chat(env, user, "我要转人工客服")
    store = TicketStore(env["db_url"])
    return store.active_ticket(user)["number"]


def test_auth_required_everywhere(env):
    for method, path in [("GET", "/api/queue"), ("GET", "/api/me"), ("GET", "/api/tickets/T1"),
                         ("POST", "/api/tickets/T1/claim"), ("POST", "/api/tickets/T1/reply"),
                         ("GET", "/api/events")]:
        assert api(env, method, path, {}).status_code == 401
        assert api(env, method, path, {"Authorization": "Bearer forged"}).status_code == 401
    bad = requests.post(f"{env['console']}/api/login", json={"name": "小王", "password": "wrong-pass"}, timeout=10)
    assert bad.status_code == 401
    assert requests.post(f"{env['console']}/api/login", data=b"{oops", timeout=10).status_code == 400


def test_expired_session_is_refused(env):
    agents = AgentStore(env["db_url"])
    token = agents.start_session(agents.by_name("小李")["id"], ttl_seconds=1)
    import time

    time.sleep(1.2)
    assert api(env, "GET", "/api/me", {"Authorization": f"Bearer {token}"}).status_code == 401


def test_console_page_served_with_charset(env):
    r = requests.get(env["console"], timeout=10)
    assert r.status_code == 200 and "utf-8" in r.headers["content-type"] and "人工坐席台" in r.text
    assert requests.get(f"{env['console']}/static/..%2Fapp.py", timeout=10).status_code == 404


def test_full_cycle_reply_close_resume_rating(env):
    user = f"u-{uuid.uuid4()}"
    chat(env, user, "我的退款申请好几天了还没到账")
    number = hand_off(env, user)
    wang = login(env)
    queue = api(env, "GET", "/api/queue", wang).json()["tickets"]
    assert number in [t["number"] for t in queue]
    view = api(env, "GET", f"/api/tickets/{number}", wang).json()
    roles = [m["role"] for m in view["transcript"]]
    assert "user" in roles and "bot" in roles
    assert view["ticket"]["reason"] == "contact_human"
    li = login(env, "小李")
    assert api(env, "POST", f"/api/tickets/{number}/reply", wang, json={"text": "x"}).status_code == 409
    assert api(env, "POST", f"/api/tickets/{number}/claim", wang).status_code == 200
    assert api(env, "POST", f"/api/tickets/{number}/claim", li).status_code == 409
    assert api(env, "POST", f"/api/tickets/{number}/reply", li, json={"text": "x"}).status_code == 403
    assert api(env, "POST", f"/api/tickets/{number}/reply", wang, json={"text": "   "}).status_code == 400
    r = api(env, "POST", f"/api/tickets/{number}/reply", wang, json={"text": "您好，我是客服小王，已在核实退款"})
    assert r.status_code == 200 and r.json()["in_tracker"]
    poll = requests.post(f"{env['rasa']}/webhooks/rest/poll", json={"sender": user}, timeout=10).json()
    assert "您好，我是客服小王" in texts(poll) and poll[0]["metadata"]["from"] == "agent"
    tracker = requests.get(f"{env['rasa']}/conversations/{user}/tracker", headers=api_headers(), timeout=10).json()
    assert any(e["event"] == "bot" and "客服小王" in (e.get("text") or "") for e in tracker["events"])
    # while paused the user's messages go to the agent, acknowledged
    ack = chat(env, user, "好的谢谢，订单号 20261127001")
    assert number in texts(ack)
    r = api(env, "POST", f"/api/tickets/{number}/close", wang, json={"note": "退款已原路退回"})
    assert r.status_code == 200 and r.json()["resumed"]
    back = requests.post(f"{env['rasa']}/webhooks/rest/poll", json={"sender": user}, timeout=10).json()
    assert "回来" in texts(back) and any(b["payload"] == "5" for m in back for b in m.get("buttons", []))
    assert "感谢您的评价" in texts(chat(env, user, "5"))
    assert TicketStore(env["db_url"]).get(number)["rating"] == 5
    answer = chat(env, user, "怎么修改绑定的手机号")
    assert answer[-1]["text"] == "这个回答解决您的问题了吗？"


def test_cancel_resumes_the_assistant(env):
    user = f"u-{uuid.uuid4()}"
    number = hand_off(env, user)
    replies = chat(env, user, "取消转人工")
    assert "取消" in texts(replies)
    assert TicketStore(env["db_url"]).get(number)["status"] == "cancelled"
    assert chat(env, user, "收不到验证码怎么办")[-1]["text"] == "这个回答解决您的问题了吗？"


def test_concurrent_claims_over_http(env):
    number = hand_off(env, f"u-{uuid.uuid4()}")
    sessions = [login(env, f"agent{i}") for i in range(10)]
    barrier = threading.Barrier(len(sessions))

    def claim(headers):
        barrier.wait()
        return api(env, "POST", f"/api/tickets/{number}/claim", headers).status_code

    with ThreadPoolExecutor(len(sessions)) as pool:
        codes = list(pool.map(claim, sessions))
    assert codes.count(200) == 1 and codes.count(409) == len(sessions) - 1


def test_twenty_users_at_once_get_distinct_tickets_and_their_own_replies(env):
    users = [f"crowd-{i}-{uuid.uuid4().hex[:6]}" for i in range(20)]
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda u: chat(env, u, "请帮我转人工"), users))
    store = TicketStore(env["db_url"])
    numbers = {u: store.active_ticket(u)["number"] for u in users}
    assert len(set(numbers.values())) == 20
    agents = [login(env, f"agent{i}") for i in range(20)]

    def serve(pair):
        (user, number), headers = pair
        assert api(env, "POST", f"/api/tickets/{number}/claim", headers).status_code == 200
        assert api(env, "POST", f"/api/tickets/{number}/reply", headers, json={"text": f"回复给 {user}"}).status_code == 200

    with ThreadPoolExecutor(20) as pool:
        list(pool.map(serve, zip(numbers.items(), agents)))
    for user in users:
        got = requests.post(f"{env['rasa']}/webhooks/rest/poll", json={"sender": user}, timeout=10).json()
        assert [m["text"].split("】")[1] for m in got] == [f"回复给 {user}"]


def test_sse_queue_stream(env):
    headers = login(env)
    with requests.get(f"{env['console']}/api/events", headers=headers, stream=True, timeout=20) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("data: "):
                assert line.startswith("data: [")
                break


def test_sign_in_is_throttled_after_repeated_failures(env):
    AgentStore(env["db_url"]).add("guessme", PASSWORD)
    url = f"{env['console']}/api/login"
    codes = [requests.post(url, json={"name": "guessme", "password": f"wrong{i}"}, timeout=10).status_code
             for i in range(6)]
    assert codes[:5] == [401] * 5 and codes[5] == 429
    blocked = requests.post(url, json={"name": "guessme", "password": PASSWORD}, timeout=10)
    assert blocked.status_code == 429 and "分钟后再试" in blocked.json()["error"]  # even the right one waits
    assert blocked.headers["Retry-After"]
    assert requests.post(url, json={"name": "小李", "password": PASSWORD}, timeout=10).status_code == 200
    actions = [(a["agent"], a["action"]) for a in TicketStore(env["db_url"]).audit_log(200)]
    assert ("guessme", "login_throttled") in actions and ("guessme", "login_failed") in actions


def test_cookie_sessions_need_the_csrf_token_and_same_origin(env):
    session = requests.Session()
    r = session.post(f"{env['console']}/api/login", json={"name": "小李", "password": PASSWORD}, timeout=10)
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    csrf = r.json()["csrf"]
    number = hand_off(env, f"u-{uuid.uuid4()}")
    claim = f"{env['console']}/api/tickets/{number}/claim"
    assert session.post(claim, timeout=10).status_code == 403  # a forged form post carries no token
    assert session.post(claim, headers={"X-CSRF-Token": "0" * 40}, timeout=10).status_code == 403
    evil = {"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
    assert session.post(claim, headers=evil, timeout=10).status_code == 403
    assert session.get(f"{env['console']}/api/me", timeout=10).json()["csrf"] == csrf
    assert session.post(claim, headers={"X-CSRF-Token": csrf}, timeout=10).status_code == 200
    https = requests.post(f"{env['console']}/api/login", json={"name": "小李", "password": PASSWORD},
                          headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert "Secure" in https.headers["Set-Cookie"]
