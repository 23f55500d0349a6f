"""The masker: corpus precision/recall, what it keeps for agents, and properties on any text."""
from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.privacy.checksums import id15_ok, id18_ok, luhn_ok
from bot.privacy.masker import mask, mask_text
from bot.privacy.metrics import load_corpus, score

CORPUS = load_corpus()


def test_corpus_is_big_enough():
    assert len(CORPUS["positive"]) >= 200 and len(CORPUS["negative"]) >= 200


def test_precision_and_recall_on_the_corpus():
    result = score(CORPUS)
    print("masker:", result.as_dict())
    assert result.precision >= 0.98, result.false_alarms[:10]
    assert result.recall >= 0.99, result.misses[:10]
    assert result.kept_lost == 0


@pytest.mark.parametrize("text, kind, expected", [
    ("我的银行卡号是 6222 0212 3456 7890 128", "card", "[卡号尾号0128]"),
    ("手机 +86 138-0013-8000 收不到短信", "phone", "[手机尾号8000]"),
    ("身份证 11010519491231002X 认证失败", "id_number", "[身份证号已隐藏]"),
    ("密码是Abc@2026登录不上", "password", "[密码已隐藏]"),
    ("验证码：482913", "code", "[验证码已隐藏]"),
    ("cvv 731，有效期 09/29", "cvv", "[安全码已隐藏]"),
    ("账单发到 zhang.san@example.com", "email", "[邮箱已隐藏]"),
    ("６２２２０２１２３４５６７８９０１２８ 扣款", "card", "[卡号尾号0128]"),
    ("6222\u200b0212\u200b3456\u200b7890\u200b128", "card", "[卡号尾号0128]"),
])
def test_masks_each_kind(text, kind, expected):
    masked = mask(text)
    assert kind in masked.kinds
    assert expected in masked.text


@pytest.mark.parametrize("text", [
    "订单号2026112745612378901一直没发货", "退款1234.56元什么时候到", "2026-11-11 付的款", "客服电话 95188",
    "密码输错3次被锁了", "新密码要8-16位吗", "验证码60秒后才能重发", "尾号1234的卡扣了钱", "支付密码忘了怎么办",
])
def test_leaves_ordinary_numbers_alone(text):
    assert mask(text).findings == ()
    assert mask(text).text == text


def test_checksums():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert id18_ok("11010519491231002X") and not id18_ok("110105194912310021")
    assert id15_ok("110105491231002") and not id15_ok("990105491231002")


def test_secret_flag_drives_the_warning():
    assert mask("密码是Abc@2026").shares_secret
    assert mask("验证码 482913").shares_secret
    assert not mask("我的邮箱 a@b.cn").shares_secret  # personal data, masked, but not a secret


def test_mask_text_tolerates_non_strings():
    assert mask_text(None) is None and mask_text("") == ""


@st.composite
def cards(draw):
    prefix = draw(st.sampled_from(["62", "4", "51", "35"]))
    length = draw(st.integers(16, 19))
    body = prefix + "".join(draw(st.lists(st.sampled_from(string.digits), min_size=length - len(prefix) - 1,
                                          max_size=length - len(prefix) - 1)))
    return next(body + d for d in string.digits if luhn_ok(body + d))


@given(st.text(max_size=300))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_any_text_masks_without_error_and_is_idempotent(text):
    once = mask(text)
    assert mask(once.text).text == once.text
    for finding in once.findings:
        assert 0 <= finding.start < finding.end <= len(once.source)


@given(cards(), st.sampled_from(["", " ", "-"]), st.sampled_from(["卡号", "我的银行卡", "用这张卡", "card "]))
@settings(max_examples=200)
def test_a_card_never_survives(card, separator, lead):
    shown = separator.join(card[i:i + 4] for i in range(0, len(card), 4))
    masked = mask(f"{lead}{shown}扣款失败").text
    assert card not in masked.replace(" ", "").replace("-", "")
    assert f"尾号{card[-4:]}" in masked


@given(st.integers(0, 10**12), st.sampled_from(["退款", "余额", "转账", "红包"]), st.sampled_from(["元", "块", "次"]))
def test_amounts_and_counts_stay(number, lead, unit):
    text = f"{lead}{number}{unit}"
    assert mask(text).text == text


def test_the_users_own_punctuation_is_kept():
    text = "申请的退款一直没有退回来，怎么回事：昨天！？"
    assert mask(text).text == text
