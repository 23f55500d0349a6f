"""Mask secrets and personal data in a user's message before it is stored, logged or shown.

What is masked: passwords stated in the text (either order: `密码是X`, `X是我的密码`, `my pass is X`,
quoted or not), verification codes next to their keyword (either order), bank card numbers (13–19
digits passing Luhn), mainland ID numbers (18 with the check character, old 15-digit ones), mobile
numbers (+86 / 0086 or bare), e-mail addresses, CVV and card expiry dates; and a number of 8+
digits right after the words that name it (`卡号 6222 0212 3456`: a card number typed in part or
mistyped is still one). Cards and phones keep their last four digits, which agents ask for.

People write numbers in many ways, so matching runs on a normalised copy of the message (see
`normalise`): every Unicode space and dash, full-width forms and other decimal digits, Chinese
numerals (一二三…〇零两幺, 壹贰叁…) in runs of four or more, and O/o/I/l typed inside digit
runs; digit groups may be separated by up to three of ` -_/.,·`. Every normalisation maps one
character to one character, so a finding's offsets are the same in the message as typed, and the
replacement covers exactly the secret there; the rest of the message stays as the user typed it.

What is not masked: order and transaction numbers, amounts, dates, times, hotlines, counts. Digits
alone say little, so each detector needs either a checksum or the words around it.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

from bot.privacy.checksums import PROVINCES, id15_ok, id18_ok, luhn_ok
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
    "card_part": "[卡号已隐藏]",
    "phone_part": "[手机号已隐藏]",
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
    """The message as typed, invisible characters dropped: the findings' offsets refer to it."""
    findings: Tuple[Finding, ...]

    @property
    def kinds(self) -> Tuple[str, ...]:
        return tuple(sorted({f.kind for f in self.findings}))

    @property
    def shares_secret(self) -> bool:
        return any(f.kind in SECRET_KINDS for f in self.findings)


@dataclass(frozen=True)
class Scan:
    source: str
    norm: str
    """`source` normalised for matching: same length, same offsets."""
    findings: Tuple[Finding, ...]


# ---------------------------------------------------------------------------------------------
# Normalisation (one character to one character)
# ---------------------------------------------------------------------------------------------

def _translation() -> Dict[int, int]:
    table: Dict[int, int] = {}
    # Full-width digits, letters and the few symbols secrets contain; full-width Chinese
    # punctuation (，：！？) is the user's and the patterns below read it as it is.
    for ch in "０１２３４５６７８９＠＋－．＿／":
        table[ord(ch)] = ord(ch) - 0xFEE0
    table.update({cp: cp - 0xFEE0 for cp in list(range(0xFF21, 0xFF3B)) + list(range(0xFF41, 0xFF5B))})
    for cp in list(range(0x80, 0x10000)) + list(range(0x1D7CE, 0x1D800)):
        ch = chr(cp)
        category = unicodedata.category(ch)
        if category == "Nd":  # every script's decimal digits (Arabic-Indic, Devanagari, 𝟔 …)
            table[cp] = ord("0") + unicodedata.decimal(ch)
        elif category == "Zs":  # no-break, thin, ideographic (U+3000) … spaces
            table[cp] = ord(" ")
        elif category == "Pd" and ch not in "〜〰":  # hyphens and dashes: ‐ ‑ ‒ – — ― ﹣ －
            table[cp] = ord("-")
    table[0x2212] = ord("-")  # minus sign
    return table


_TRANSLATE = _translation()
_CN_DIGIT = {
    **dict.fromkeys("〇零", "0"), **dict.fromkeys("一壹幺", "1"), **dict.fromkeys("二两贰貳", "2"),
    **dict.fromkeys("三叁參", "3"), **dict.fromkeys("四肆", "4"), **dict.fromkeys("五伍", "5"),
    **dict.fromkeys("六陆陸", "6"), **dict.fromkeys("七柒", "7"), **dict.fromkeys("八捌", "8"),
    **dict.fromkeys("九玖", "9"),
}
_CN_CLASS = "".join(_CN_DIGIT)
_SEP_CHARS = r" \-_/.,\u00b7\u30fb\u2022"
_SEP = f"[{_SEP_CHARS}]{{1,3}}"
# Chinese numerals count as digits in a run of at least four of them (a code or longer): 一直,
# 零钱, 两三天, 一千二百 stay words; so does the last numeral of a run when it starts a word
# (…零零零一直打不通, …四五个).
_CN_RUN = re.compile(f"[{_CN_CLASS}](?:[{_SEP_CHARS}]{{0,2}}[{_CN_CLASS}]){{3,}}")
_CN_EDGE_RUN = re.compile(f"[{_CN_CLASS}](?:[{_SEP_CHARS}]{{0,2}}[{_CN_CLASS}])+")
_CN_ANY = re.compile(f"[{_CN_CLASS}]")
_CN_WORD_AFTER = frozenset("直下共个样定起次些点天位元块角月年日号笔张只件种分秒周岁倍成半百千万亿")
# O/o for 0 and I/i/l for 1, inside a run of digits (not next to other letters: hello2024 stays),
# no more such letters than digits.
_OL_HINT = re.compile(f"[0-9][{_SEP_CHARS}]{{0,3}}[OoIil]|[OoIil][{_SEP_CHARS}]{{0,3}}[0-9]")
_OL_RUN = re.compile(f"(?<![A-Za-z0-9])[0-9OoIil](?:[{_SEP_CHARS}]{{0,3}}[0-9OoIil])+[Xx]?(?![A-Za-z0-9])")
_OL_DIGIT = str.maketrans("OoIil", "00111")


def normalise(source: str) -> str:
    """The form the patterns read; len(normalise(s)) == len(s), offsets unchanged."""
    norm = source.translate(_TRANSLATE)
    if _CN_ANY.search(norm):
        norm = _numerals_to_digits(norm, _CN_RUN.finditer(norm))
    if _OL_HINT.search(norm):
        chars = None
        for run in _OL_RUN.finditer(norm):
            body = run.group()
            letters = sum(body.count(c) for c in "OoIil")
            digits = sum(c.isdigit() for c in body)
            if digits >= 6 and letters <= digits:
                chars = chars if chars is not None else list(norm)
                chars[run.start():run.end()] = body.translate(_OL_DIGIT)
        if chars is not None:
            norm = "".join(chars)
    return norm


def _numerals_to_digits(norm: str, runs: Iterable["re.Match[str]"]) -> str:
    chars = None
    for run in runs:
        end = run.end()
        if norm[end:end + 1] in _CN_WORD_AFTER:
            end -= 1
        chars = chars if chars is not None else list(norm)
        for i in range(run.start(), end):
            chars[i] = _CN_DIGIT.get(chars[i], chars[i])
    return norm if chars is None else "".join(chars)


_DIGIT_OR_NUMERAL = re.compile(f"[0-9{_CN_CLASS}]")


def has_digits(norm: str) -> bool:
    """Any digit or Chinese numeral at all (most messages have none)."""
    return _DIGIT_OR_NUMERAL.search(norm) is not None


def with_numeral_edges(norm: str) -> str:
    """`norm` with Chinese numerals also as digits in a shorter run (two or more) at the very start
    or end of the message: the rest of a number typed in the next or previous message."""
    if not _CN_ANY.search(norm):
        return norm
    lead = _CN_EDGE_RUN.match(norm, leading_space(norm))
    tail = None
    for tail in _CN_EDGE_RUN.finditer(norm):
        pass
    if tail is not None and norm[tail.end():].strip(" ,.，。、…~-"):
        tail = None
    return _numerals_to_digits(norm, [run for run in (lead, tail) if run is not None])


# ---------------------------------------------------------------------------------------------
# Numbers: cards, ID numbers, phones
# ---------------------------------------------------------------------------------------------

# A run of digit groups (separated by up to three separator characters), optionally after + or 00
# (international phone prefix), ending with X for ID numbers.
_NUMBER_RUN = re.compile(f"(?<![0-9A-Za-z])\\+?[0-9]+(?:{_SEP}[0-9]+)*(?:(?:{_SEP})?[Xx])?(?![0-9A-Za-z])")
_GROUP = re.compile(r"[0-9]+|[Xx]")
_IP_ADDRESS = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_CARD_WORDS = ("卡号", "银行卡", "信用卡", "储蓄卡", "借记卡", "这张卡", "card", "卡是", "卡:", "卡：")
_ORDER_WORDS = ("订单", "单号", "流水", "交易号", "运单", "编号", "商户号", "工单", "票号", "合同", "账单号", "批次",
                "会员号", "用户号", "uid", "id", "order", "invoice")
_ID_WORDS = ("身份证", "证件号", "id number", "id no")
_PHONE_WORDS = ("手机", "电话", "号码", "mobile", "phone", "call", "联系")
# A number followed by one of these is an amount or a count, not a secret.
_UNITS = tuple("元块角次天个分秒万笔位岁号月年日%") + ("小时", "周", "期")
# The words right before a number that say what it is: then 8+ digits are masked even when they
# are no complete number (typed in part, or mistyped).
_NAMED_NUMBER = re.compile(
    r"(?:(?P<card>(?:银行|信用|储蓄|借记)?卡号码?|card (?:number|no\.?))|(?P<id>身份证(?:号码?)?|证件号码?|id number)"
    r"|(?P<phone>手机号?码?|电话号?码?|mobile|phone))\s*(?:是|为|:|：|=|is)?\s*$",
    re.IGNORECASE,
)


def _before(text: str, start: int, width: int = 12) -> str:
    return text[max(0, start - width):start].lower()


def is_quantity(text: str, end: int) -> bool:
    return text[end:end + 3].lstrip().startswith(_UNITS)


def _is_ip_address(text: str, start: int, end: int) -> bool:
    """An IPv4 address (four dotted numbers up to 255), unless the words before say phone."""
    if not _IP_ADDRESS.fullmatch(text, start, end) or any(w in _before(text, start) for w in _PHONE_WORDS):
        return False
    return all(int(part) <= 255 for part in text[start:end].split("."))


def _is_card_prefix(digits: str) -> bool:
    """Issuers: 3 (Amex, JCB, Diners), 4 (Visa), 5 (Mastercard), 6 (UnionPay, Discover) and
    Mastercard's 2221–2720."""
    return digits[0] in "3456" or "2221" <= digits[:4] <= "2720"


def _amex(digits: str) -> bool:
    """15 digits that are an American Express number (old 15-digit IDs of Anhui (34) and
    Shandong (37) look the same, and have been invalid since 2013)."""
    return digits[:2] in ("34", "37") and luhn_ok(digits)


def classify_digits(digits: str, context: str = "", hint: str = "") -> Optional[Tuple[str, str]]:
    """(kind, replacement) when the digits (optionally ending in X) are a card, ID or mobile
    number; `context` is the lower-cased text before them, `hint` what earlier words called them."""
    check_x = len(digits) == 18 and digits[-1:] in "Xx"
    if not digits[:-1].isdigit() or not (digits[-1].isdigit() or check_x):
        return None
    if len(digits) == 18 and id18_ok(digits):
        return "id_number", LABELS["id_number"]
    card_context = hint == "card" or any(w in context for w in _CARD_WORDS)
    id_context = hint == "id_number" or any(w in context for w in _ID_WORDS)
    if len(digits) == 15 and id15_ok(digits) and (id_context or not (card_context or _amex(digits))):
        return "id_number", LABELS["id_number"]
    mobile = digits
    if len(digits) == 13 and digits.startswith("861"):
        mobile = digits[2:]
    elif len(digits) == 15 and digits.startswith("00861"):
        mobile = digits[4:]
    if len(mobile) == 11 and _MOBILE.fullmatch(mobile):
        return "phone", f"[手机尾号{mobile[-4:]}]"
    if 13 <= len(digits) <= 19 and digits.isdigit():
        # after 订单号 it is an order number, after 身份证号 a mistyped ID number
        other_context = hint in ("order", "id_number") or any(w in context for w in _ORDER_WORDS + _ID_WORDS)
        if (card_context or (_is_card_prefix(digits) and not other_context)) and luhn_ok(digits):
            return "card", f"[卡号尾号{digits[-4:]}]"
    return None


def _named_part(text: str, start: int, digits: str) -> Optional[Tuple[str, str]]:
    """A number of 8+ digits right after 卡号 / 身份证号 / 手机号 (7+ for a phone)."""
    named = _NAMED_NUMBER.search(text, max(0, start - 16), start)
    if named is None or not digits[:-1].isdigit():
        return None
    if named.group("card") and 8 <= len(digits) <= 19 and digits.isdigit():
        return "card", LABELS["card_part"]
    if named.group("id") and 8 <= len(digits) <= 18:
        return "id_number", LABELS["id_number"]
    if named.group("phone") and 7 <= len(digits) <= 11 and digits.isdigit() and digits[0] == "1":
        return "phone", LABELS["phone_part"]
    return None


def _groups(text: str, start: int, end: int) -> List[Tuple[int, int]]:
    return [m.span() for m in _GROUP.finditer(text, start, end)]


def _numbers(text: str) -> List[Finding]:
    found: List[Finding] = []
    for match in _NUMBER_RUN.finditer(text):
        start, end = match.span()
        if is_quantity(text, end):
            continue
        if _is_ip_address(text, start, end):
            continue
        groups = _groups(text, start, end)
        digits = "".join(text[a:b] for a, b in groups)
        hit = classify_digits(digits, _before(text, start)) or _named_part(text, start, digits)
        if hit:
            found.append(Finding(hit[0], start, end, hit[1]))
        elif len(groups) > 1:
            found += _sub_runs(text, groups)
    return found


def _sub_runs(text: str, groups: List[Tuple[int, int]]) -> List[Finding]:
    """A run that is nothing as a whole (two numbers, or a date before a phone): the longest
    consecutive groups that are a number, left to right. Linear in the number of groups (at most
    19 digits' worth of groups from each), so a long message of digits stays fast."""
    found: List[Finding] = []
    digits = "".join(text[a:b] for a, b in groups)
    at = [0]  # where each group's digits start in `digits`
    for a, b in groups:
        at.append(at[-1] + b - a)
    i = 0
    while i < len(groups):
        hit = None
        context = _before(text, groups[i][0])
        card_context = any(w in context for w in _CARD_WORDS)
        last = i
        while last < len(groups) and at[last + 1] - at[i] <= 19:
            last += 1
        for j in range(last - 1, i - 1, -1):
            size = at[j + 1] - at[i]
            if size < 11:
                break
            if size == 12 or not _could_be_number(digits, at[i], size, card_context):
                continue
            end = groups[j][1]
            if is_quantity(text, end):
                continue
            hit = classify_digits(digits[at[i]:at[j + 1]], context)
            if hit:
                found.append(Finding(hit[0], groups[i][0], end, hit[1]))
                i = j + 1
                break
        if not hit:
            i += 1
    return found


def _could_be_number(digits: str, start: int, size: int, card_context: bool) -> bool:
    """A cheap first look before the checksums: a phone starts with 1 (or 86, 0086), a card with
    2–6 (or anything after 卡号), an ID number with a province (1–8)."""
    first = digits[start]
    if size == 11:
        return first == "1" and digits[start + 1] in "3456789"
    if card_context or first in "3456" or (first == "2" and "2221" <= digits[start:start + 4] <= "2720"):
        return True
    if size in (15, 18) and digits[start:start + 2] in PROVINCES:
        return True
    return digits.startswith("861", start) if size == 13 else size == 15 and digits.startswith("00861", start)


_LEADING_RUN = re.compile(f"\\s*([0-9]+(?:{_SEP}[0-9]+)*(?:(?:{_SEP})?[Xx])?)(?![0-9A-Za-z])")
_TRAILING_RUN = re.compile(f"(?<![0-9A-Za-z])([0-9]+(?:{_SEP}[0-9]+)*)[\\s,.，。、…~-]*$")
_LEADING_SPACE = re.compile(r"\s*")


def leading_run(text: str) -> Optional[Tuple[int, int, str]]:
    """(start, end, digits) of the digit run a message starts with."""
    match = _LEADING_RUN.match(text)
    if match is None:
        return None
    start, end = match.span(1)
    return start, end, "".join(text[a:b] for a, b in _groups(text, start, end))


def trailing_run(text: str) -> Optional[Tuple[int, int, str, str]]:
    """(start, end, digits, hint) of the digit run a message ends with; the hint is what the
    words before it call it (card, id_number, phone, order or '')."""
    # A 19-digit number with separators fits in 80 characters; searching only the end keeps a
    # long message linear (the pattern anchored at the end would retry from every digit).
    offset = max(0, len(text) - 80)
    match = _TRAILING_RUN.search(text[offset:])
    if match is None:
        return None
    start, end = match.start(1) + offset, match.end(1) + offset
    context = _before(text, start)
    hint = ""
    for name, words in (("card", _CARD_WORDS), ("id_number", _ID_WORDS), ("order", _ORDER_WORDS),
                        ("phone", _PHONE_WORDS)):
        if any(w in context for w in words):
            hint = name
            break
    return start, end, "".join(text[a:b] for a, b in _groups(text, start, end)), hint


def leading_space(text: str) -> int:
    return _LEADING_SPACE.match(text).end()


# ---------------------------------------------------------------------------------------------
# Words around a secret: passwords, codes, CVV, expiry; e-mail addresses
# ---------------------------------------------------------------------------------------------

_OPEN_QUOTE = "[\"'“‘「『《]?"
_CLOSE_QUOTE = "[\"'”’」』》]?"
# A password: printable ASCII without quotes (a quote around it is the user's, not the secret's).
_PW_CHARS = "[!#-&(-~]"
_PW_WORDS = r"(?:登录|登陆|支付|交易|取款|银行卡|账户|账号|网银|钱包|新|旧|原|初始)?(?:密码|口令)"
_EN_PW_WORDS = r"(?<![A-Za-z])(?:password|passcode|passwd|pwd|pin)(?:码)?(?![A-Za-z])"
_CONNECT = r"(?:(?:是|为|就是|改成了?|改为|设成了?|设置成了?|设置为|换成了?|is|was)\s*)?(?:[:：=]\s*)?"
_PASSWORD = re.compile(
    f"(?:{_PW_WORDS}|{_EN_PW_WORDS})\\s*{_CONNECT}\\s*{_OPEN_QUOTE}\\s*(?P<secret>{_PW_CHARS}{{4,64}})(?!{_PW_CHARS})",
    re.IGNORECASE,
)
# "pass" is also a word: only with is/:/=.
_PASS = re.compile(
    f"(?<![A-Za-z])pass\\s*(?:is|was|:|=|：)\\s*{_OPEN_QUOTE}(?P<secret>{_PW_CHARS}{{4,64}})(?!{_PW_CHARS})", re.IGNORECASE
)
_PASSWORD_BACKWARD = re.compile(
    f"(?<![!-~]){_OPEN_QUOTE}(?P<secret>{_PW_CHARS}{{4,64}}){_CLOSE_QUOTE}\\s*(?:就是|是|为|作为)\\s*"
    r"(?:我的?|我们的|他的|她的)?[\u4e00-\u9fff]{0,4}?(?:密码|口令)"
    f"|(?<![!-~])(?P<en>{_PW_CHARS}{{4,64}})\\s+(?:is|was)\\s+(?:my|the)\\s+(?:[a-z]+\\s+)?"
    r"(?:password|passcode|pwd|pin)(?![A-Za-z])",
    re.IGNORECASE,
)
_QUANTITY_AFTER = tuple("位个次天元块分秒到至以")

# A code: 4–8 digits, single spaces, dashes or dots between them allowed ("7 3 9 1 5 2").
_CODE_VALUE = r"(?P<secret>[0-9](?:[ \-.]?[0-9]){3,7})(?![ \-.]?[0-9])(?![A-Za-z])"
_CODE_WORDS = (r"(?:验证码|校验码|动态码|短信码|动态密码|认证码|确认码|授权码"
               r"|(?:收到|发来|发过来|短信里|短信上|短信中|刚收到|发给我|发我)的?(?:验证)?码)")
_EN_CODE_WORDS = r"(?<![A-Za-z])(?:(?:verification|sms|otp|one[- ]time)\s+code|otp|code)(?![A-Za-z])"
_CODE_CONNECT = r"(?:(?:是|为|就是|号码是|is|was)\s*)?(?:[:：=]\s*)?"
_CODE_FORWARD = re.compile(
    f"(?:{_CODE_WORDS}|{_EN_CODE_WORDS})\\s*{_CODE_CONNECT}\\s*{_OPEN_QUOTE}\\s*{_CODE_VALUE}", re.IGNORECASE
)
_CODE_BACKWARD = re.compile(
    f"(?<![0-9A-Za-z.]){_OPEN_QUOTE}{_CODE_VALUE}{_CLOSE_QUOTE}\\s*(?:就是|是|为)?\\s*[^\\d\\s，。,.!?！？\\]]{{0,6}}?"
    r"(?:验证码|校验码|动态码|短信码|(?:收到|发来|发过来)的?码)",
    re.IGNORECASE,
)
_EN_CODE_BACKWARD = re.compile(
    f"(?<![0-9A-Za-z.]){_CODE_VALUE}\\s+(?:is|was)\\s+(?:the|my)\\s+(?:verification\\s+|sms\\s+)?(?:code|otp)(?![A-Za-z])",
    re.IGNORECASE,
)
# "code" after these words is no secret: error codes, invitation and coupon codes, post codes.
_NOT_SECRET_CODE = ("error", "err", "invite", "invitation", "promo", "coupon", "zip", "post", "area", "country",
                    "status", "swift", "qr", "order", "product", "tracking", "错误", "邀请", "优惠", "兑换", "状态",
                    "邮编", "区号", "二维", "订单", "商品", "快递")
_CVV = re.compile(
    r"(?:cvv2?|cvc2?|cvn2?|安全码|卡背面?的?(?:三|3)位数?字?|背面的?(?:三|3)位数?字?)"
    r"(?:\s*(?:是|为|:|：|=|is)\s*|\s+)?(?P<secret>\d{3,4})(?!\d)",
    re.IGNORECASE,
)
_EXPIRY = re.compile(
    r"(?:有效期|有效日期|到期日|过期时间|exp(?:iry|iration)?(?: date)?|valid thru)(?:\s*(?:至|到|是|为|:|：|=)\s*|\s+)?"
    r"(?P<secret>(?:1[0-2]|0?[1-9])\s*/\s*(?:\d{2}|20\d{2})(?![\d/])|20\d{2}\s*[年/\-.]\s*(?:1[0-2]|0?[1-9])\s*月?)",
    re.IGNORECASE,
)
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])(?P<secret>[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})"
)
# Anything worth a closer look: a digit, an @, or a word that announces a secret.
_INTERESTING = re.compile(r"[0-9@]|密码|口令|pass|pwd", re.IGNORECASE)


def _looks_like_password(secret: str) -> bool:
    if secret.lower().startswith(("http", "www.")):
        return False
    if re.fullmatch(r"\d{1,2}[-~]\d{1,2}", secret):
        return False
    return (any(c.isdigit() for c in secret) or not secret.isalnum()
            or (secret.lower() != secret and secret.upper() != secret) or len(secret) >= 8)


def _passwords(text: str) -> List[Finding]:
    found = []
    for pattern in (_PASSWORD, _PASS, _PASSWORD_BACKWARD):
        for match in pattern.finditer(text):
            group = "en" if match.groupdict().get("en") else "secret"
            secret = match.group(group)
            start, end = match.span(group)
            after = text[end:end + 1]
            if after and after in _QUANTITY_AFTER:
                continue
            if _looks_like_password(secret):
                found.append(Finding("password", start, end, LABELS["password"]))
    return found


def _codes(text: str) -> List[Finding]:
    found = []
    for pattern in (_CODE_FORWARD, _CODE_BACKWARD, _EN_CODE_BACKWARD):
        for match in pattern.finditer(text):
            start, end = match.span("secret")
            if is_quantity(text, end):
                continue
            if any(w in _before(text, match.start(), 10) for w in _NOT_SECRET_CODE):
                continue
            found.append(Finding("code", start, end, LABELS["code"]))
    return found


def _by_pattern(pattern: "re.Pattern[str]", kind: str, text: str) -> List[Finding]:
    return [Finding(kind, m.start("secret"), m.end("secret"), LABELS[kind]) for m in pattern.finditer(text)
            if kind in ("email", "expiry") or not is_quantity(text, m.end("secret"))]


def resolve(candidates: Iterable[Finding]) -> List[Finding]:
    """Without overlaps: the earliest, then the longest, then the first listed wins."""
    chosen: List[Finding] = []
    for finding in sorted(candidates, key=lambda f: (f.start, -(f.end - f.start))):
        if not chosen or finding.start >= chosen[-1].end:
            chosen.append(finding)
    return chosen


def find_in(norm: str) -> List[Finding]:
    """Every finding in a normalised text."""
    if not _INTERESTING.search(norm):
        return []
    lower = norm.lower()

    def has(words: Tuple[str, ...]) -> bool:  # a cheap look before each pattern
        return any(w in lower for w in words)

    return resolve(
        (_by_pattern(_EMAIL, "email", norm) if "@" in norm else [])
        + (_by_pattern(_EXPIRY, "expiry", norm) if has(("有效", "到期", "过期", "exp", "valid")) else [])
        + (_by_pattern(_CVV, "cvv", norm) if has(("cv", "安全码", "背面")) else [])
        + _numbers(norm)
        + (_codes(norm) if has(("码", "code", "otp")) else [])
        + (_passwords(norm) if has(("密码", "口令", "pass", "pwd", "pin")) else [])
    )


def find(text: str) -> List[Finding]:
    """Every finding in a message (offsets into the message as typed, invisible characters dropped)."""
    return find_in(normalise(text))


def scan(text: str) -> Scan:
    source = strip_control(text) if isinstance(text, str) else ""
    norm = normalise(source)
    return Scan(source, norm, tuple(find_in(norm)))


def build(source: str, findings: Iterable[Finding]) -> Masked:
    """The masked message: each finding's span of `source` replaced by its label."""
    findings = tuple(findings)
    out, last = [], 0
    for finding in findings:
        out.append(source[last:finding.start])
        out.append(finding.replacement)
        last = finding.end
    out.append(source[last:])
    return Masked(text="".join(out), source=source, findings=findings)


def mask(text: str) -> Masked:
    """The message with secrets and personal data replaced by labels such as [卡号尾号1234]."""
    found = scan(text)
    return build(found.source, found.findings)


def mask_text(text: str) -> str:
    """Just the masked text (for logs, transcripts and stored events)."""
    return mask(text).text if isinstance(text, str) and text else text
