"""Scam signals inside any message: the words of known frauds and links to look-alike domains.

A message that mentions a "安全账户", screen sharing, 刷单 or someone asking for the code is
treated as a fraud report whatever else it asks: the user gets the urgent safety steps and a
top-priority hand-off. Phrases and the app's official domains are in assistant.yml
(`scam:`), so support staff add a new scam's wording without touching code.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import List, Tuple

from bot.config import settings
from bot.text import strip_control

DEFAULT_PHRASES = (
    "安全账户", "安全账号", "屏幕共享", "共享屏幕", "刷单", "验证码发给我", "把验证码发给", "把验证码告诉",
    "验证码告诉他", "验证码报给", "下载会议软件", "远程协助", "注销校园贷", "解冻费", "保证金才能提现",
)
DEFAULT_OFFICIAL_DOMAINS = ("alipay.com", "gopay.co.id", "tokenpocket.pro")

_URL = re.compile(r"(?:https?://)?((?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,}|xn--[a-z0-9\-.]+)", re.IGNORECASE)
_SECOND_LEVEL = {"com", "net", "org", "gov", "edu", "co"}


@dataclass(frozen=True)
class ScamSettings:
    phrases: Tuple[str, ...] = DEFAULT_PHRASES
    official_domains: Tuple[str, ...] = DEFAULT_OFFICIAL_DOMAINS


@lru_cache(maxsize=1)
def scam_settings() -> ScamSettings:
    raw = settings().scam
    return ScamSettings(
        phrases=tuple(str(p).lower() for p in raw.get("phrases") or DEFAULT_PHRASES),
        official_domains=tuple(str(d).lower() for d in raw.get("official_domains") or DEFAULT_OFFICIAL_DOMAINS),
    )


def _registrable(host: str) -> str:
    """example.com from pay.example.com; example.com.cn from pay.example.com.cn."""
    labels = host.lower().strip(".").split(".")
    if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL and len(labels[-1]) == 2:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def _distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def looks_like_official(host: str, official_domains=None) -> bool:
    """True for a host that imitates an official domain without being it (or under it)."""
    host = host.lower().strip(".")
    officials = official_domains or scam_settings().official_domains
    if any(host == d or host.endswith("." + d) for d in officials):
        return False
    if host.startswith("xn--") or ".xn--" in host:
        return True  # internationalised look-alike characters
    name = _registrable(host).split(".")[0]
    for official in officials:
        brand = official.split(".")[0]
        if brand in host.replace("-", "").replace(".", ""):
            return True  # alipay-secure.com, alipay.com.verify.cn
        if len(brand) >= 5 and 0 < _distance(name, brand) <= 2:
            return True  # a1ipay.com, alipey.com
    return False


def lookalike_links(text: str) -> List[str]:
    """The hosts in `text` that imitate an official domain, each once, in order.

    The scam guard's check of users' messages, and the refusal of staff text users will read
    (service notices, FAQ answers and drafts): no support text may send users to a look-alike
    such as alipay-secure.com (issue 16, finding 7). Full-width letters and invisible characters
    are normalised first, so `ａｌｉｐａｙ－ｓｅｃｕｒｅ．ｃｏｍ` is caught too."""
    cleaned = unicodedata.normalize("NFKC", strip_control(text or "")).lower()
    found: List[str] = []
    for match in _URL.finditer(cleaned):
        host = match.group(1)
        if host not in found and looks_like_official(host):
            found.append(host)
    return found


def scam_signals(text: str) -> List[str]:
    """What in the (normalised) message points at a scam; empty when nothing does."""
    lowered = (text or "").lower()
    found = [p for p in scam_settings().phrases if p in lowered]
    found += [f"link:{host}" for host in lookalike_links(lowered)]
    return found
