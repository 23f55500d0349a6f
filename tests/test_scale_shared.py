"""Two Rasa instances behave like one assistant (issue 18): the real scale-out (`make scale`:
nginx, two Rasa servers, PostgreSQL, Redis lock store and shared state), with Telegram and
WeChat switched on against local fakes of their APIs. Each test sends one step to instance A
and the next to instance B directly, as nginx's round robin or a platform's retry may:

- WeChat retries a MsgId to the other instance: exactly one answer;
- a Telegram update delivered to both: processed once; a button A offered, pressed through B: works;
- a WeChat user answers "1" on B to the buttons A offered: the button's payload;
- a conversation over its rate limit on A is limited on B; new conversations of one address too.
"""
from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List

import pytest
import requests

from bot.security.tokens import api_headers
from tests.conftest import POSTGRES_URL, require_model, require_postgres
from tests.fake_telegram import FakeTelegram
from tests.fake_wechat import FakeWeChat, text_xml
from tests.servers import always_open_settings, running_cluster
from tests.test_telegram import HEADERS as TG_HEADERS
from tests.test_telegram import SECRET as TG_SECRET
from tests.test_telegram import TOKEN as TG_TOKEN
from tests.test_telegram import buttons_of, callback_update, message_update
from tests.test_wechat import APP_ID, APP_SECRET, SMS_QUESTION, WeChatServer
from tests.test_wechat import TOKEN as WX_TOKEN

pytestmark = [pytest.mark.server, pytest.mark.model, pytest.mark.postgres]

CREDENTIALS = """\
bot.channels.rest.WalletRestInput:
bot.channels.telegram.WalletTelegramInput:
  access_token: ${TELEGRAM_TOKEN}
  verify: ${TELEGRAM_BOT_USERNAME}
  secret_token: ${TELEGRAM_SECRET_TOKEN}
  api_base_url: ${TELEGRAM_API_BASE_URL}
bot.channels.wechat.WeChatInput:
  app_id: ${WECHAT_APP_ID}
  app_secret: ${WECHAT_APP_SECRET}
  token: ${WECHAT_TOKEN}
  api_base_url: ${WECHAT_API_BASE_URL}
"""
SENDER_BURST = 4
SESSION_BURST = 3
LIMITS = {"per_sender: {per_minute: 30, burst: 10}": f"per_sender: {{per_minute: 1, burst: {SENDER_BURST}}}",
          "new_sessions_per_client: {per_minute: 30, burst: 20}":
              f"new_sessions_per_client: {{per_minute: 1, burst: {SESSION_BURST}}}"}


def _redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping())
    except Exception:
        return False


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from bot.devtools.cluster import nginx_binary, temporary_schema

    require_model()
    require_postgres()
    if not _redis_up():
        pytest.fail("Redis is not reachable at 127.0.0.1:6379 (make test expects it)")
    nginx_binary()
    workdir = tmp_path_factory.mktemp("scale_shared")
    settings = always_open_settings(workdir)
    text = settings.read_text(encoding="utf-8")
    for default, small in LIMITS.items():
        assert default in text
        text = text.replace(default, small)
    settings.write_text(text, encoding="utf-8")
    credentials = workdir / "credentials.yml"
    credentials.write_text(CREDENTIALS, encoding="utf-8")
    telegram = FakeTelegram(TG_TOKEN).start()
    try:
        with FakeWeChat(APP_ID, APP_SECRET) as wechat:
            env = {"TELEGRAM_TOKEN": TG_TOKEN, "TELEGRAM_BOT_USERNAME": telegram.username,
                   "TELEGRAM_SECRET_TOKEN": TG_SECRET, "TELEGRAM_API_BASE_URL": telegram.url,
                   "WECHAT_APP_ID": APP_ID, "WECHAT_APP_SECRET": APP_SECRET, "WECHAT_TOKEN": WX_TOKEN,
                   "WECHAT_API_BASE_URL": wechat.base_url}
            with temporary_schema(POSTGRES_URL) as schema, \
                    running_cluster(workdir, instances=2, pg_url=POSTGRES_URL, schema=schema, settings=settings,
                                    credentials=credentials, extra_env=env) as cluster:
                a, b = (inst["url"] for inst in cluster.instances)
                yield {"a": a, "b": b, "cluster": cluster, "telegram": telegram, "wechat": wechat}
    finally:
        telegram.stop()


def user_texts(base: str, sender: str) -> List[str]:
    tracker = requests.get(f"{base}/conversations/{sender}/tracker", headers=api_headers(), timeout=30).json()
    return [e["text"] for e in tracker["events"] if e["event"] == "user"]


def test_both_instances_keep_their_shared_state_in_redis(pair):
    for inst in pair["cluster"].instances:
        log = inst["log"].read_text(errors="replace")
        assert "Shared state (channel dedupe" in log and "Redis at redis://127.0.0.1:6379/1" in log, log[-2000:]


# -- WeChat ----------------------------------------------------------------------------------------

def test_a_wechat_retry_that_reaches_the_other_instance_is_answered_once(pair):
    """WeChat retries after 5 s; nginx may hand the retry to the other instance. The first delivery
    answers (a passive reply, or "success" and the customer-service API); the retries say
    "success" and nothing else is sent."""
    fake: FakeWeChat = pair["wechat"]
    on_a = WeChatServer(f"{pair['a']}/webhooks/wechat/webhook", fake)
    on_b = WeChatServer(f"{pair['b']}/webhooks/wechat/webhook", fake)
    user = "o" + uuid.uuid4().hex[:27]
    xml = text_xml(user, SMS_QUESTION, int(time.time() * 1000) + 17)
    with ThreadPoolExecutor(2) as pool:  # the retry arrives while A is still answering
        first = pool.submit(on_a.post, xml)
        time.sleep(0.2)
        retry = pool.submit(on_b.post, xml)
        first, retry = first.result(), retry.result()
    late = on_b.post(xml)  # and once more after A answered
    time.sleep(6)  # anything A sends late through the customer-service API has arrived by now
    assert [r.status_code for r in (first, retry, late)] == [200, 200, 200]
    assert retry.text == "success" and late.text == "success"
    passive = [r for r in (first, retry, late) if r.text != "success"]
    answers = len(passive) + len(fake.texts_to(user))
    assert answers == 1, (first.text[:200], fake.texts_to(user))
    assert user_texts(pair["a"], user) == [SMS_QUESTION] == user_texts(pair["b"], user)


def test_a_numbered_wechat_answer_on_b_picks_the_button_a_offered(pair):
    fake: FakeWeChat = pair["wechat"]
    on_a = WeChatServer(f"{pair['a']}/webhooks/wechat/webhook", fake)
    on_b = WeChatServer(f"{pair['b']}/webhooks/wechat/webhook", fake)
    user = "o" + uuid.uuid4().hex[:27]
    assert "回复数字：1. 是  2. 否" in on_a.text(user, SMS_QUESTION)
    assert "太好了" in on_b.text(user, "1")
    assert user_texts(pair["b"], user)[-1] == "/affirm"


# -- Telegram --------------------------------------------------------------------------------------

def _post(base: str, update: Dict) -> requests.Response:
    return requests.post(f"{base}/webhooks/telegram/webhook", json=update, headers=TG_HEADERS, timeout=60)


def test_a_telegram_update_delivered_to_both_instances_is_processed_once(pair):
    fake: FakeTelegram = pair["telegram"]
    chat = 6_100_000_000 + int(uuid.uuid4().int % 1_000_000)
    update = message_update(chat, "怎么修改绑定的手机号")
    with ThreadPoolExecutor(2) as pool:
        replies = [f.result() for f in [pool.submit(_post, pair["a"], update), pool.submit(_post, pair["b"], update)]]
    assert [r.status_code for r in replies] == [200, 200]
    time.sleep(1)
    assert user_texts(pair["a"], str(chat)) == ["怎么修改绑定的手机号"]
    sent = fake.texts(chat)
    assert sent and len(sent) == len(set(sent)), sent  # one answer, not two copies


def test_a_telegram_button_offered_by_a_and_pressed_through_b_works(pair):
    fake: FakeTelegram = pair["telegram"]
    chat = 6_200_000_000 + int(uuid.uuid4().int % 1_000_000)
    assert _post(pair["a"], message_update(chat, "短信验证码一直收不到怎么办")).status_code == 200
    keyboards = fake.wait_for(lambda: [c for c in fake.calls_to("sendMessage", chat) if buttons_of(c)])
    offered = buttons_of(keyboards[-1])
    yes = next(b for b in offered if b["text"] == "是")
    press = callback_update(chat, yes["callback_data"], [{"title": b["text"], "payload": b["callback_data"]}
                                                          for b in offered])
    before = len(fake.calls_to("sendMessage", chat))
    assert _post(pair["b"], press).status_code == 200
    after = fake.texts(chat)[before:]
    assert after and not any("失效" in t for t in after), after
    assert any("太好了" in t for t in after), after
    assert user_texts(pair["b"], str(chat))[-1] == yes["callback_data"] == "/affirm"


# -- rate limits -----------------------------------------------------------------------------------

def _rest(base: str, sender: str, text: str, headers: Dict[str, str] = None) -> requests.Response:
    return requests.post(f"{base}/webhooks/rest/webhook", json={"sender": sender, "message": text},
                         headers=headers or {}, timeout=60)


def test_a_conversation_over_its_limit_on_a_is_limited_on_b(pair):
    sender = f"limit-{uuid.uuid4().hex[:10]}"
    codes = [_rest(pair["a"], sender, text).status_code for text in ["你好", "退款多久到账", "谢谢", "在吗"][:SENDER_BURST]]
    assert codes == [200] * SENDER_BURST
    refused = _rest(pair["b"], sender, "提现失败怎么办")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]  # the FAQ's rate_limited message
    assert _rest(pair["b"], f"other-{uuid.uuid4().hex[:8]}", "你好").status_code == 200  # others are not
    assert "提现失败怎么办" not in user_texts(pair["b"], sender)


def test_new_conversations_of_one_address_are_counted_across_instances(pair):
    address = f"198.51.100.{uuid.uuid4().int % 200 + 20}"
    headers = {"X-Forwarded-For": address}  # a user behind our proxy

    def session(base: str) -> int:
        return requests.post(f"{base}/webhooks/rest/session", headers=headers, timeout=30).status_code

    assert [session(pair["a"] if i % 2 else pair["b"]) for i in range(SESSION_BURST)] == [200] * SESSION_BURST
    assert session(pair["a"]) == 429 and session(pair["b"]) == 429
