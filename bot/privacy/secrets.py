"""The assistant never asks for a password, a code or a card number, not even by mistake.

An FAQ edit that would ask users to send us a secret ("请提供您的验证码") is refused when the file
is loaded, with the field named, so it never reaches a user. Telling users *not* to share them
("不要把验证码告诉任何人") or where to type them in the app ("在页面输入验证码") is fine.
"""
from __future__ import annotations

import re
from typing import Optional

_SECRET = r"(?:登录|支付|交易|取款)?(?:密码|验证码|校验码|动态码|短信码|完整卡号|银行卡号|卡号|cvv|cvc|安全码|身份证号码?)"
_ASK = re.compile(
    r"(?:提供|告诉|告知|发送|发给|发来|回复|报给|报一下|私信|留下|贴出)\s*(?:一下)?\s*(?:我|我们|客服|小助手|本助手|这里)?\s*"
    r"(?:您|你)?(?:的)?\s*(?:收到的)?\s*" + _SECRET,
    re.IGNORECASE,
)
_ASK_REVERSED = re.compile(r"(?:把|将)\s*(?:您|你)?(?:的)?\s*(?:收到的)?\s*" + _SECRET + r"\s*(?:发|告诉|提供|报|回复)(?:给)?\s*(?:我|我们|客服|小助手)", re.IGNORECASE)
_NEGATION = ("不要", "别", "切勿", "绝不", "从不", "不会", "请勿", "勿", "不得", "不能", "千万不", "没有", "也不", "都不", "绝对不")


def asks_for_secret(text: str) -> Optional[str]:
    """The phrase that asks the user for a secret, or None."""
    for pattern in (_ASK, _ASK_REVERSED):
        for match in pattern.finditer(text or ""):
            before = text[max(0, match.start() - 12):match.start()]
            clause = re.split(r"[。！？!?\n；;，,]", before)[-1]
            if any(word in clause for word in _NEGATION):
                continue
            return match.group(0)
    return None
