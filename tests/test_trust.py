"""Trust features without a server: rate limits, signed sessions, offered payloads, scam signals,
and the rule that no answer ever asks for a secret."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.nlu.training_data.message import Message

from bot.faq.model import FaqError, faq_texts, load_faq
from bot.privacy.secrets import asks_for_secret
from bot.nlu.scam_guard import ScamSignalGuard
from bot.config import ROOT, faq_path
from bot.security.clients import client_address
from bot.security.payloads import checked_payload, offered_payloads
from bot.security.rate_limit import RateLimiter
from bot.security.scam import looks_like_official, scam_signals
from bot.security.tokens import issue_session, verify_session


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_allows_a_burst_then_refills():
    clock = FakeClock()
    limiter = RateLimiter(per_minute=30, burst=3, clock=clock)
    assert [limiter.allow("u1") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("u2")  # another key has its own bucket
    assert 0 < limiter.wait_time("u1") <= 2.0
    clock.now += 2.0  # 30/min: one token every 2 s
    assert limiter.allow("u1") and not limiter.allow("u1")


def test_rate_limiter_forgets_the_oldest_keys():
    limiter = RateLimiter(per_minute=1, burst=1, max_keys=100)
    for i in range(1000):
        limiter.allow(f"k{i}")
    assert len(limiter.state._buckets) == 100


def test_client_address_trusts_only_our_proxy():
    assert client_address("203.0.113.9", None) == "203.0.113.9"
    assert client_address("203.0.113.9", "10.0.0.1") == "203.0.113.9"  # a forged header from outside
    assert client_address("127.0.0.1", None) is None  # a local tool
    assert client_address("127.0.0.1", "198.51.100.7, 203.0.113.9") == "203.0.113.9"
    assert client_address("127.0.0.1", "not-an-ip") == "invalid-forwarded-for"


def test_session_tokens_are_signed_and_expire():
    session, token = issue_session(now=1_000_000)
    assert verify_session(token, now=1_000_001) == session
    assert verify_session(token, now=1_000_000 + 31 * 24 * 3600) is None
    sid, expires, sig = token.split(".")
    assert verify_session(f"{'0' * 32}.{expires}.{sig}", now=1_000_001) is None  # another id
    assert verify_session(f"{sid}.{int(expires) + 999}.{sig}", now=1_000_001) is None  # longer life
    for junk in (None, 42, "", "a.b.c", "x" * 500, token + "x"):
        assert verify_session(junk, now=1_000_001) is None


@given(st.text(max_size=120))
@settings(max_examples=300)
def test_no_string_passes_as_a_session_token(text):
    assert verify_session(text) is None


def _bot_with_buttons(*payloads):
    return BotUttered("请选择", data={"buttons": [{"title": p, "payload": p} for p in payloads]})


def test_only_offered_payloads_force_an_intent():
    events = [UserUttered("退款"), _bot_with_buttons("/affirm", "/deny", "/contact_human")]
    assert offered_payloads(events) == {"/affirm", "/deny", "/contact_human"}
    assert checked_payload("/affirm", events) == "/affirm"
    assert checked_payload("/refund", events) == "refund"  # never offered: plain text for the NLU
    assert checked_payload('/affirm{"last_topic": "x"}', events) == 'affirm{"last_topic": "x"}'
    assert checked_payload("//", events) == ""
    assert checked_payload("退款多久到账", events) == "退款多久到账"


@pytest.mark.parametrize("text", [
    "对方让我把钱转到安全账户里", "客服让我开屏幕共享帮我退款", "做刷单任务被骗了", "他说把验证码发给我就能解冻",
    "点了这个链接 https://alipay-secure.com/refund 要填卡号", "a1ipay.com 是你们官网吗", "http://xn--alpay-9ta.com",
])
def test_scam_signals(text):
    assert scam_signals(text)


@pytest.mark.parametrize("text", [
    "退款多久到账", "验证码收不到怎么办", "https://www.alipay.com/help 打不开", "账户安全中心在哪", "屏幕碎了怎么办",
    "淘宝 www.taobao.com 付款失败",
])
def test_no_scam_signal_in_ordinary_questions(text):
    assert scam_signals(text) == []


def test_look_alike_domains():
    official = ("alipay.com",)
    assert not looks_like_official("alipay.com", official) and not looks_like_official("help.alipay.com", official)
    assert looks_like_official("alipay.com.verify-center.cn", official)
    assert looks_like_official("alipey.com", official)
    assert not looks_like_official("example.org", official)


def test_scam_guard_turns_any_intent_into_a_fraud_report():
    message = Message(data={"text": "退款的时候客服让我开屏幕共享", "intent": {"name": "refund", "confidence": 0.9},
                            "intent_ranking": [{"name": "refund", "confidence": 0.9}]})
    ScamSignalGuard({}).process([message])
    assert message.get("intent") == {"name": "report_fraud", "confidence": 1.0}
    assert message.get("intent_ranking")[1]["name"] == "refund"
    assert message.get("scam_signals") == ["屏幕共享"]


@pytest.mark.parametrize("text", [
    "请提供您的银行卡号", "麻烦把收到的验证码发给我们", "请告诉我您的登录密码", "请回复您的身份证号码", "请发送完整卡号和CVV",
])
def test_asking_for_a_secret_is_recognised(text):
    assert asks_for_secret(text)


@pytest.mark.parametrize("text", [
    "请不要把验证码告诉任何人", "官方客服从不索要验证码或密码", "收到验证码后在页面输入即可", "密码、验证码不要告诉任何人，包括客服",
])
def test_warning_about_secrets_is_not_asking(text):
    assert asks_for_secret(text) is None


def test_no_answer_or_response_asks_for_a_secret():
    texts = list(faq_texts(load_faq(faq_path())))
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    for name, variants in (domain.get("responses") or {}).items():
        texts += [(f"response {name}", v.get("text", "")) for v in variants]
    assert len(texts) > 40
    assert [(where, asks_for_secret(text)) for where, text in texts if asks_for_secret(text)] == []


def test_an_faq_edit_that_asks_for_a_secret_is_refused(tmp_path: Path):
    text = faq_path().read_text(encoding="utf-8")
    bad = tmp_path / "faq.yml"
    bad.write_text(text.replace("以上都试过仍登录不了，可以点「转人工」。", "请把您收到的验证码发给我们，方便核实。"), encoding="utf-8")
    with pytest.raises(FaqError, match="login_failure.*asks the user for a secret"):
        load_faq(bad)
