"""Mask secrets and personal data in a user's message before it is stored, logged or shown.

What is masked: passwords stated in the text, verification codes next to their keyword, bank
card numbers (13–19 digits passing Luhn, spaces or dashes allowed), mainland ID numbers (18 with
the check character, old 15-digit ones), mobile numbers (+86 or bare), e-mail addresses, CVV and
card expiry dates. Cards and phones keep their last four digits, which agents ask for.

What is not: order and transaction numbers, amounts, dates, times, hotlines, counts. Digits alone
say little, so each detector needs either a checksum or the words around it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Tuple

from bot.privacy.checksums import id15_ok, id18_ok, luhn_ok
from bot.text import strip_control

# Kinds whose sharing earns the user an immediate safety warning.
SECRET_KINDS = frozenset({"password", "code", "card", "cvv"})

LABELS = {
    "password": "[密码已隐藏]",
    "code": "[验证码已隐藏]",
    "id_number": "[身份证号已隐藏]",
    "email": "[邮箱已隐藏]",
    "cvv": "[安全码已隐藏]",
    "expiry": "[有效期已隐藏]",
}


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    replacement: str


@dataclass(frozen=True)
class Masked:
    text: str
    """The message with every finding replaced."""
    source: str
    """The cleaned input the findings' offsets refer to."""
    findings: Tuple[Finding, ...]

    @property
    def kinds(self) -> Tuple[str, ...]:
        return tuple(sorted({f.kind for f in self.findings}))

    @property
    def shares_secret(self) -> bool:
        return any(f.kind in SECRET_KINDS for f in self.findings)


# Full-width digits, letters and the few symbols secrets contain (＠＋－．＿／) become ASCII so
# they are found; full-width Chinese punctuation (，：！？) is the user's and stays as typed.
_FULLWIDTH = {ord(ch): ord(ch) - 0xFEE0 for ch in "０１２３４５６７８９＠＋－．＿／"}
_FULLWIDTH.update({cp: cp - 0xFEE0 for cp in list(range(0xFF21, 0xFF3B)) + list(range(0xFF41, 0xFF5B))})

_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# A run of digits in groups separated by one space or dash (cards and phones are often grouped),
# optionally after + or 00 (international phone prefix), ending with X for ID numbers.
_NUMBER_RUN = re.compile(r"(?<![0-9A-Za-z.])(?:\+|00)?\d+(?:[ \-]\d+)*[Xx]?(?![0-9A-Za-z]|\.\d)")
_SEPARATORS = re.compile(r"[ \-+]")
_MOBILE = re.compile(r"1[3-9]\d{9}")

_CONNECT = r"(?:\s*(?:是|为|:|：|=|就是|是：|改成了?|改为|设成了?|设置成了?|设置为|is)\s*)?"
_PASSWORD = re.compile(
    r"(?:密码|口令|password|passwd|pwd|pin码?)" + _CONNECT + r"(?P<secret>[!-~]{4,64})(?![!-~])", re.IGNORECASE
)
_QUANTITY_AFTER = tuple("位个次天元块分秒到至以")
_CODE_FORWARD = re.compile(
    r"(?:验证码|校验码|动态码|短信码|动态密码|认证码|确认码|code|otp)(?:\s*(?:是|为|:|：|=|就是|号码是)\s*|\s+)?(?P<secret>\d{4,8})(?!\d)",
    re.IGNORECASE,
)
_CODE_BACKWARD = re.compile(
    r"(?<![0-9.])(?P<secret>\d{4,8})\s*(?:就是|是)?\s*[^\d\s，。,.!?！？]{0,6}?(?:验证码|校验码|动态码)"
)
_CVV = re.compile(
    r"(?:cvv2?|cvc2?|cvn2?|安全码|卡背面?的?(?:三|3)位数?字?|背面的?(?:三|3)位数?字?)(?:\s*(?:是|为|:|：|=)\s*|\s+)?(?P<secret>\d{3,4})(?!\d)",
    re.IGNORECASE,
)
_EXPIRY = re.compile(
    r"(?:有效期|有效日期|到期日|过期时间|exp(?:iry|iration)?(?: date)?|valid thru)(?:\s*(?:至|到|是|为|:|：|=)\s*|\s+)?"
    r"(?P<secret>(?:0?[1-9]|1[0-2])\s*/\s*(?:\d{2}|20\d{2})(?![\d/])|20\d{2}\s*[年/\-.]\s*(?:0?[1-9]|1[0-2])\s*月?)",
    re.IGNORECASE,
)
_CARD_WORDS = ("卡号", "银行卡", "信用卡", "储蓄卡", "借记卡", "card")
_ORDER_WORDS = ("订单", "单号", "流水", "交易号", "运单", "编号", "商户号", "工单", "票号", "合同", "账单号", "批次",
                "会员号", "用户号", "uid", "id")
# A number followed by one of these is an amount or a count, not a secret.
_UNITS = tuple("元块角次天个分秒万笔位岁号月年日") + ("小时", "周", "期")
_ID_WORDS = ("身份证", "证件号")


def clean(text: str) -> str:
    """Invisible and control characters out, full-width digits and letters to ASCII (so ６２２２ is
    digits); everything else as the user typed it."""
    return strip_control(text).translate(_FULLWIDTH)


def _before(text: str, start: int, width: int = 12) -> str:
    return text[max(0, start - width):start].lower()


def _classify_number(text: str, start: int, end: int) -> List[Finding]:
    raw = text[start:end]
    digits = _SEPARATORS.sub("", raw)
    context = _before(text, start)
    check_x = digits[-1:] in "Xx" and len(digits) == 18
    if not digits.isdigit() and not check_x:
        return []
    if len(digits) == 18 and id18_ok(digits):
        return [Finding("id_number", start, end, LABELS["id_number"])]
    card_context = any(w in context for w in _CARD_WORDS)
    if len(digits) == 15 and id15_ok(digits) and (not card_context or any(w in context for w in _ID_WORDS)):
        return [Finding("id_number", start, end, LABELS["id_number"])]
    mobile = digits
    if len(digits) == 13 and digits.startswith("861"):
        mobile = digits[2:]
    elif len(digits) == 15 and digits.startswith("00861"):
        mobile = digits[4:]
    if len(mobile) == 11 and _MOBILE.fullmatch(mobile):
        return [Finding("phone", start, end, f"[手机尾号{mobile[-4:]}]")]
    if 13 <= len(digits) <= 19 and digits.isdigit() and luhn_ok(digits):
        order_context = any(w in context for w in _ORDER_WORDS)
        if card_context or (digits[0] in "3456" and not order_context):
            return [Finding("card", start, end, f"[卡号尾号{digits[-4:]}]")]
    return []


def _is_quantity(text: str, end: int) -> bool:
    return text[end:end + 3].lstrip().startswith(_UNITS)


def _numbers(text: str) -> List[Finding]:
    found: List[Finding] = []
    for match in _NUMBER_RUN.finditer(text):
        start, end = match.span()
        if _is_quantity(text, end):
            continue
        hits = _classify_number(text, start, end)
        if not hits and re.search(r"[ \-]", match.group()):
            # A joined run that is nothing as a whole: try its groups one by one.
            for group in re.finditer(r"\d+[Xx]?", match.group()):
                hits += _classify_number(text, start + group.start(), start + group.end())
        found += hits
    return found


def _password(text: str) -> List[Finding]:
    found = []
    for match in _PASSWORD.finditer(text):
        secret = match.group("secret")
        after = text[match.end("secret"):match.end("secret") + 1]
        if after and after in _QUANTITY_AFTER or secret.lower().startswith(("http", "www.")):
            continue
        if re.fullmatch(r"\d+(?:[-~]\d+)?", secret) and len(secret) < 4:
            continue
        looks_secret = (any(c.isdigit() for c in secret) or not secret.isalnum()
                        or (secret.lower() != secret and secret.upper() != secret) or len(secret) >= 8)
        if looks_secret and not re.fullmatch(r"\d{1,2}[-~]\d{1,2}", secret):
            found.append(Finding("password", match.start("secret"), match.end("secret"), LABELS["password"]))
    return found


def _by_pattern(pattern: "re.Pattern[str]", kind: str, text: str) -> List[Finding]:
    return [Finding(kind, m.start("secret"), m.end("secret"), LABELS[kind]) for m in pattern.finditer(text)
            if kind in ("email", "expiry") or not _is_quantity(text, m.end("secret"))]


def find(text: str) -> List[Finding]:
    """Every finding in the (cleaned) text, without overlaps: the earliest, then longest, wins."""
    candidates = (
        _by_pattern(_EMAIL_SECRET, "email", text)
        + _by_pattern(_EXPIRY, "expiry", text)
        + _by_pattern(_CVV, "cvv", text)
        + _numbers(text)
        + _by_pattern(_CODE_FORWARD, "code", text)
        + _by_pattern(_CODE_BACKWARD, "code", text)
        + _password(text)
    )
    chosen: List[Finding] = []
    for finding in sorted(candidates, key=lambda f: (f.start, -(f.end - f.start))):
        if not chosen or finding.start >= chosen[-1].end:
            chosen.append(finding)
    return chosen


_EMAIL_SECRET = re.compile(f"(?P<secret>{_EMAIL.pattern})")


def mask(text: str) -> Masked:
    """The message with secrets and personal data replaced by labels such as [卡号尾号1234]."""
    source = clean(text) if isinstance(text, str) else ""
    findings = find(source)
    out, last = [], 0
    for finding in findings:
        out.append(source[last:finding.start])
        out.append(finding.replacement)
        last = finding.end
    out.append(source[last:])
    return Masked(text="".join(out), source=source, findings=tuple(findings))


def mask_text(text: str) -> str:
    """Just the masked text (for logs, transcripts and stored events)."""
    return mask(text).text if isinstance(text, str) and text else text
