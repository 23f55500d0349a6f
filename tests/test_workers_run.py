"""`WORKERS=2 make run` behaves like one process (issue 18): the real launcher (scripts/run.sh,
what `make run` runs after training) on a copy of the checkout, two Sanic workers, Redis lock
store and shared state on the machine's Redis (a key prefix of its own), Telegram and WeChat
switched on against local fakes of their APIs. The kernel hands each new connection (no
keep-alive) to either worker, so every check below sends many requests and both workers take
part (each pulls the model from the console: two processes are seen there).

- the same answers as one process started the same way;
- a conversation's rate limit is one budget, whichever worker counts it;
- a WeChat message delivered twice at once is answered once; a Telegram update delivered twice
  is processed once, and a button offered in one request works in the next.
"""
from __future__ import annotations

import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List

import pytest
import redis
import requests

from tests.fake_telegram import FakeTelegram
from tests.fake_wechat import FakeWeChat, text_xml
from tests.servers import free_port, launched, launcher_env, project_copy
from tests.test_telegram import HEADERS as TG_HEADERS
from tests.test_telegram import SECRET as TG_SECRET
from tests.test_telegram import TOKEN as TG_TOKEN
from tests.test_telegram import buttons_of, callback_update, message_update
from tests.test_wechat import APP_ID, APP_SECRET, SMS_QUESTION, WeChatServer
from tests.test_wechat import TOKEN as WX_TOKEN

pytestmark = [pytest.mark.server, pytest.mark.model]

QUESTIONS = ["提现多久到账", "忘记支付密码了怎么办", "付款失败了", "账户被冻结了", "有人自称客服要验证码",
             "退款什么时候到", "今天天气怎么样", "我要转人工"]
BURST = 10  # assistant.yml rate_limit per_sender burst


def _redis() -> redis.Redis:
    client = redis.Redis(host="127.0.0.1", port=6379, db=1, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        pytest.fail("Redis is not reachable at 127.0.0.1:6379 (make test expects it)")
    return client


def _start(tmp_path_factory, name: str, workers: int, extra: Dict[str, str]):
    base = tmp_path_factory.mktemp(name)
    project = project_copy(base)
    ports = {"RASA_PORT": str(free_port()), "CONSOLE_PORT": str(free_port()), "ACTION_PORT": str(free_port())}
    env = launcher_env(project, WORKERS=str(workers), **ports, **extra)
    log = base / "run.log"
    with launched(project, env, log):
        yield {"url": f"http://127.0.0.1:{ports['RASA_PORT']}",
               "console": f"http://127.0.0.1:{ports['CONSOLE_PORT']}", "log": log}


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    client = _redis()
    prefix = f"w2t{uuid.uuid4().hex[:8]}:"
    telegram = FakeTelegram(TG_TOKEN).start()
    try:
        with FakeWeChat(APP_ID, APP_SECRET) as wechat:
            extra = {"WALLET_REDIS_PREFIX": prefix,
                     "TELEGRAM_TOKEN": TG_TOKEN, "TELEGRAM_BOT_USERNAME": telegram.username,
                     "TELEGRAM_WEBHOOK_URL": "https://bot.example.com/webhooks/telegram/webhook",
                     "TELEGRAM_SECRET_TOKEN": TG_SECRET, "TELEGRAM_API_BASE_URL": telegram.url,
                     "WECHAT_APP_ID": APP_ID, "WECHAT_APP_SECRET": APP_SECRET, "WECHAT_TOKEN": WX_TOKEN,
                     "WECHAT_ENCODING_AES_KEY": "", "WECHAT_API_BASE_URL": wechat.base_url}
            for server in _start(tmp_path_factory, "two_workers", 2, extra):
                _wait_for_two_processes(server["console"])
                yield {**server, "telegram": telegram, "wechat": wechat, "prefix": prefix, "redis": client}
    finally:
        telegram.stop()
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)


def _wait_for_two_processes(console: str) -> None:
    """Both workers pulled the model from the console (each is a process serving it)."""
    seen: List[Dict] = []
    for _ in range(60):
        seen = requests.get(f"{console}/model/processes", timeout=10).json()["processes"]
        if len(seen) >= 2:
            return
        time.sleep(1)
    raise AssertionError(f"two workers did not both pull the model: {seen}")


def _rest(base: str, sender: str, text: str) -> requests.Response:
    # a new connection per request (no session): either worker may take it
    return requests.post(f"{base}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=60)


def _answers(base: str) -> Dict[str, List[str]]:
    out = {}
    for question in QUESTIONS:
        reply = _rest(base, f"same-{uuid.uuid4().hex[:10]}", question)
        assert reply.status_code == 200, reply.text
        # ticket numbers, queue positions and the wait they predict differ from one hand-off to the next
        out[question] = [re.sub(r"T\d[\w-]*|\d+(?= ?位)|\d+(?= ?分钟)", "#", m.get("text", "")) for m in reply.json()]
    return out


def test_two_workers_say_so_and_keep_their_state_in_redis(two_workers):
    log = two_workers["log"].read_text(errors="replace")
    assert "2 Sanic workers, Redis lock store and shared state" in log, log[-3000:]
    pulled = requests.get(f"{two_workers['console']}/model/processes", timeout=10).json()["processes"]
    assert len(pulled) == 2, pulled  # one Rasa server, two worker processes


def test_two_workers_give_the_answers_one_process_gives(two_workers, tmp_path_factory):
    on_two = [_answers(two_workers["url"]) for _ in range(3)]  # three rounds: both workers answer
    assert on_two[0] == on_two[1] == on_two[2]
    for one in _start(tmp_path_factory, "one_process", 1, {"WALLET_REDIS_PREFIX": "unused:"}):
        assert _answers(one["url"]) == on_two[0]


def test_a_conversations_limit_is_one_budget_across_workers(two_workers):
    sender = f"limit-{uuid.uuid4().hex[:10]}"
    codes = [_rest(two_workers["url"], sender, "在吗").status_code for _ in range(BURST + 3)]
    assert codes == [200] * BURST + [429] * 3, codes  # not 2 × BURST
    assert two_workers["redis"].exists(f"{two_workers['prefix']}rate:sender:{sender}")


def test_a_wechat_message_delivered_twice_at_once_is_answered_once(two_workers):
    fake: FakeWeChat = two_workers["wechat"]
    server = WeChatServer(f"{two_workers['url']}/webhooks/wechat/webhook", fake)
    for _ in range(3):
        user = "o" + uuid.uuid4().hex[:27]
        xml = text_xml(user, SMS_QUESTION, int(time.time() * 1000) + 31)
        with ThreadPoolExecutor(3) as pool:  # WeChat's retries, on new connections
            replies = [f.result() for f in [pool.submit(server.post, xml) for _ in range(3)]]
        time.sleep(1)
        assert [r.status_code for r in replies] == [200, 200, 200]
        answers = len([r for r in replies if r.text != "success"]) + len(fake.texts_to(user))
        assert answers == 1, ([r.text[:80] for r in replies], fake.texts_to(user))


def _telegram(base: str, update: Dict) -> requests.Response:
    return requests.post(f"{base}/webhooks/telegram/webhook", json=update, headers=TG_HEADERS, timeout=60)


def test_a_telegram_update_delivered_twice_is_processed_once_and_its_buttons_work(two_workers):
    fake: FakeTelegram = two_workers["telegram"]
    base = two_workers["url"]
    for _ in range(3):
        chat = 6_300_000_000 + int(uuid.uuid4().int % 1_000_000)
        update = message_update(chat, "短信验证码一直收不到怎么办")
        with ThreadPoolExecutor(2) as pool:
            replies = [f.result() for f in [pool.submit(_telegram, base, update) for _ in range(2)]]
        assert [r.status_code for r in replies] == [200, 200]
        keyboards = fake.wait_for(lambda: [c for c in fake.calls_to("sendMessage", chat) if buttons_of(c)])
        sent = fake.texts(chat)
        assert len(sent) == len(set(sent)), sent  # one answer, not two copies
        yes = next(b for b in buttons_of(keyboards[-1]) if b["text"] == "是")
        press = callback_update(chat, yes["callback_data"], [{"title": b["text"], "payload": b["callback_data"]}
                                                              for b in buttons_of(keyboards[-1])])
        before = len(fake.calls_to("sendMessage", chat))
        assert _telegram(base, press).status_code == 200
        after = fake.texts(chat)[before:]
        assert after and not any("失效" in t for t in after) and any("太好了" in t for t in after), after
