"""Write tests/data/pii_corpus_independent.yml: masker test cases built from the formats' own
definitions, not from the masker's rules (seeded, so it is reproducible).

Why a second corpus: tests/data/pii_corpus.yml is written by the people who write the masker, so
it tends to contain the forms the masker already knows. This generator starts from what the
secrets ARE and from how people type them:

- card numbers: real issuer prefixes (UnionPay banks' BINs, Visa, Mastercard 51-55 and
  2221-2720, Amex, JCB, Diners, Discover) at their real lengths, completed with a valid Luhn
  check digit;
- resident ID numbers: real county codes + a birth date + sequence + the ISO 7064 MOD 11-2
  check character;
- mobile numbers: the mainland operators' number blocks;
- passwords: random strings under common password rules, and 6-digit payment PINs;
- codes: random 4/6-digit SMS codes; e-mail addresses; CVV and expiry dates;

rendered the many ways a person types them: any grouping, with spaces (also U+3000, no-break and
thin spaces), dashes of every kind, `_ / . ,`, full-width digits, Chinese numerals (small and
banker's forms, 幺 for 1 in phone numbers), O/l typed for 0/1, split over two messages, inside
varied Chinese and English phrasings. Hard negatives are the numbers a wallet chat is full of:
amounts, order and transaction numbers (some pass Luhn), dates, times, hotlines, counts, tails.

Cases follow the schema of pii_corpus.yml: `text` (or `conversation`: consecutive messages of one
user) + `secrets` (kind, value, and for conversations the index of the `message` that holds it)
+ `keep` (the last four digits the agent must still see). In conversations `allowed` names the
earlier part of a split number: masking it is fine, leaving it is not a miss (it was stored
before the rest arrived; see docs/trust.md).

Run: .venv/bin/python tests/data/generate_pii_independent.py
"""
from __future__ import annotations

import random
import string
from datetime import date, timedelta
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml

OUT = Path(__file__).resolve().parent / "pii_corpus_independent.yml"
SEED = 16_2026

# ---------------------------------------------------------------------------------------------
# The formats
# ---------------------------------------------------------------------------------------------

# (prefix, lengths): issuer identification numbers that are in real use.
CARD_ISSUERS: List[Tuple[str, Tuple[int, ...]]] = [
    ("622202", (19,)),   # ICBC debit
    ("621226", (19,)),   # ICBC debit
    ("622848", (19,)),   # Agricultural Bank debit
    ("621700", (19,)),   # China Construction Bank debit
    ("622700", (19,)),   # China Construction Bank debit
    ("621661", (19,)),   # Bank of China debit
    ("622588", (16,)),   # China Merchants Bank
    ("621483", (16,)),   # China Merchants Bank
    ("622262", (19,)),   # Bank of Communications
    ("621799", (19,)),   # Postal Savings Bank
    ("625", (16,)),      # UnionPay credit
    ("628", (16,)),      # UnionPay credit
    ("4", (16,)),        # Visa
    ("4", (13,)),        # Visa (old 13-digit)
    ("51", (16,)), ("52", (16,)), ("53", (16,)), ("54", (16,)), ("55", (16,)),  # Mastercard
    ("2221", (16,)), ("2720", (16,)), ("2500", (16,)),  # Mastercard 2-series
    ("34", (15,)), ("37", (15,)),   # American Express
    ("3528", (16,)), ("3589", (16,)),  # JCB
    ("36", (14,)),       # Diners Club International
    ("6011", (16,)),     # Discover
]

# County-level division codes (GB/T 2260) of several provinces.
ID_REGIONS = [
    "110101", "110105", "110108", "120101", "130102", "140105", "150102", "210102", "220102",
    "230103", "310101", "310104", "310115", "320102", "320506", "330106", "330382", "340104",
    "350203", "360102", "370202", "410105", "420106", "430104", "440106", "440305", "450103",
    "460106", "500103", "510104", "520102", "530102", "540102", "610113", "620102", "630102",
    "640104", "650102",
]
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)

# Mainland mobile number blocks (China Mobile, Unicom, Telecom, Broadnet, virtual operators).
MOBILE_PREFIXES = [
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "145", "147", "149",
    "150", "151", "152", "153", "155", "156", "157", "158", "159", "162", "165", "166", "167",
    "170", "171", "172", "173", "175", "176", "177", "178", "180", "181", "182", "183", "184",
    "185", "186", "187", "188", "189", "190", "191", "192", "193", "195", "196", "197", "198", "199",
]

EMAIL_DOMAINS = ["qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "sina.com", "foxmail.com",
                 "hotmail.com", "yeah.net", "company.cn", "mail.example.org"]

CN_SMALL = dict(zip("0123456789", "零一二三四五六七八九"))
CN_BANKER = dict(zip("0123456789", "零壹贰叁肆伍陆柒捌玖"))
FULLWIDTH = {d: chr(ord(d) + 0xFEE0) for d in "0123456789Xx"}

# What people put between digit groups.
SEPARATORS = [" ", " ", "-", "-", "", "  ", "\u3000", "_", "/", ".", ",", "\u2014", "\u2013", " - ",
              "\u00a0", "\u2009", "\u2212"]


def luhn_check_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        n = int(ch)
        if i % 2 == 0:  # doubled: the check digit will be appended to the right
            n *= 2
            n = n - 9 if n > 9 else n
        total += n
    return str((10 - total % 10) % 10)


class Gen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice(string.digits) for _ in range(n))

    # -- secrets ---------------------------------------------------------------------------
    def card(self) -> str:
        prefix, lengths = self.rng.choice(CARD_ISSUERS)
        length = self.rng.choice(lengths)
        body = prefix + self.digits(length - len(prefix) - 1)
        return body + luhn_check_digit(body)

    def id18(self) -> str:
        born = date(1950, 1, 1) + timedelta(days=self.rng.randint(0, 21000))
        body = self.rng.choice(ID_REGIONS) + born.strftime("%Y%m%d") + self.digits(3)
        return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, ID_WEIGHTS)) % 11]

    def mobile(self) -> str:
        return self.rng.choice(MOBILE_PREFIXES) + self.digits(8)

    def password(self) -> str:
        """8-16 characters with letters and digits (sometimes a symbol), as password rules ask."""
        length = self.rng.randint(8, 16)
        symbols = "!@#$%^&*_.-"
        chars = [self.rng.choice(string.ascii_lowercase), self.rng.choice(string.digits)]
        if self.rng.random() < 0.5:
            chars.append(self.rng.choice(string.ascii_uppercase))
        if self.rng.random() < 0.35:
            chars.append(self.rng.choice(symbols))
        pool = string.ascii_letters + string.digits
        chars += [self.rng.choice(pool) for _ in range(length - len(chars))]
        self.rng.shuffle(chars)
        return "".join(chars)

    def word_password(self) -> str:
        """The kind people really pick: a word and a number."""
        word = self.rng.choice(["hunter", "sunshine", "dragon", "monkey", "letmein", "qwerty", "zxcv", "abc",
                                "iloveyou", "wang", "zhang", "li", "liu", "chen", "baobei", "woaini", "pass",
                                "Summer", "Admin", "Hello", "Tiger", "Love"])
        tail = self.rng.choice([self.digits(self.rng.randint(2, 6)), str(self.rng.randint(1970, 2026)),
                                "@" + self.digits(3), self.digits(3) + "!", "_" + self.digits(4)])
        return word + tail

    def pin(self) -> str:
        return self.digits(6)

    def code(self) -> str:
        return self.digits(self.rng.choice([4, 6, 6, 6, 6, 8]))

    def email(self) -> str:
        alphabet = string.ascii_lowercase + string.digits
        name = self.rng.choice(string.ascii_lowercase) + "".join(
            self.rng.choice(alphabet + "._-") for _ in range(self.rng.randint(2, 14)))
        name = name.rstrip("._-") + self.rng.choice(alphabet)
        name = name.replace("..", ".").replace("._", "_").replace("_.", "_")
        return f"{name}@{self.rng.choice(EMAIL_DOMAINS)}"

    # -- rendering -------------------------------------------------------------------------
    def groups(self, number: str, kind: str) -> List[str]:
        """Split into the groups people use for this kind, or random ones."""
        r = self.rng.random()
        if kind == "phone" and r < 0.6:
            cuts = self.rng.choice([(3, 7), (3,), (3, 6, 9), (7,)])
        elif kind == "id_number" and r < 0.6:
            cuts = self.rng.choice([(6, 14), (6, 10, 14), (6,), (4, 8, 12, 16)])
        elif kind == "card" and r < 0.7:
            cuts = tuple(range(4, len(number), 4)) if len(number) != 15 else (4, 10)
        else:
            cuts, at = [], 0
            while True:
                at += self.rng.randint(2, 6)
                if at >= len(number):
                    break
                cuts.append(at)
        bounds = [0, *cuts, len(number)]
        return [number[a:b] for a, b in zip(bounds, bounds[1:]) if number[a:b]]

    def digit_style(self, kind: str) -> str:
        r = self.rng.random()
        if r < 0.50:
            return "ascii"
        if r < 0.62:
            return "fullwidth"
        if r < 0.80:
            return "chinese"
        if r < 0.88 and kind != "id_number":
            return "banker"
        return "ol"

    def style_digits(self, text: str, style: str, kind: str) -> str:
        zero = self.rng.choice(["零", "〇"])
        out = []
        for ch in text:
            if not ch.isdigit():
                out.append(FULLWIDTH.get(ch, ch) if style == "fullwidth" else ch)
            elif style == "fullwidth":
                out.append(FULLWIDTH[ch])
            elif style == "chinese":
                if ch == "1" and kind == "phone" and self.rng.random() < 0.7:
                    out.append("幺")
                elif ch == "0":
                    out.append(zero)
                else:
                    out.append(CN_SMALL[ch])
            elif style == "banker":
                out.append(CN_BANKER[ch])
            elif style == "ol" and ch in "01" and self.rng.random() < 0.4:
                out.append(self.rng.choice("Oo") if ch == "0" else self.rng.choice("lI"))
            else:
                out.append(ch)
        return "".join(out)

    def render_number(self, number: str, kind: str) -> str:
        style = self.digit_style(kind)
        if style in ("chinese", "banker"):
            # Numerals are said in one breath or in small groups with a space.
            sep = self.rng.choice(["", "", " ", "\u3000"])
        else:
            sep = self.rng.choice(SEPARATORS)
        text = sep.join(self.groups(number, kind)) if sep else number
        return self.style_digits(text, style, kind)

    def render_phone(self, number: str) -> str:
        shown = self.render_number(number, "phone")
        r = self.rng.random()
        if r < 0.12:
            return "+86" + self.rng.choice(["", " ", "-"]) + shown
        if r < 0.17:
            return "0086" + self.rng.choice(["", " "]) + shown
        return shown

    def render_code(self, code: str) -> str:
        r = self.rng.random()
        if r < 0.55:
            return code
        if r < 0.70:
            return " ".join(code)
        if r < 0.85:
            return self.style_digits(code, "chinese", "code")
        if r < 0.93:
            return self.style_digits(code, "fullwidth", "code")
        return self.rng.choice(["-", ".", "\u3000"]).join([code[:len(code) // 2], code[len(code) // 2:]])


def last4(number: str) -> str:
    return number[-4:]


# ---------------------------------------------------------------------------------------------
# Phrasings
# ---------------------------------------------------------------------------------------------

CARD_WITH_CONTEXT = [
    "我的银行卡号是{}，帮我查一下", "卡号{}绑不上", "卡号：{}", "银行卡 {} 扣款失败", "信用卡{}被盗刷了",
    "储蓄卡号码 {} 提现没到", "这张卡 {} 怎么解绑", "借记卡{}显示异常", "card number {} was charged twice",
    "My card no. is {}", "退款退到哪张卡了？{}", "绑的卡是{}", "提现到{}这张卡一直没到账",
]
CARD_BARE = [
    "{} 付款一直失败", "用{}付的款", "{}", "帮我看看 {} 为什么扣了两次", "转到 {} 了吗",
    "扣款的是{}吗", "{} 这个能用吗", "收款账号 {}",
]
ID_WITH_CONTEXT = [
    "身份证号{}实名认证失败", "我的身份证是 {}", "证件号码：{}", "身份证号码 {} 被别人绑定了",
    "实名认证填的身份证{}通不过", "ID number {}", "证件号 {} 对吗", "我身份证{}",
]
ID_BARE = [
    "{} 这个号码实名不了", "实名用的是{}", "{}", "帮我查下{}绑了几个账户",
]
PHONE_WITH_CONTEXT = [
    "我手机号{}收不到验证码", "手机 {} 换号了", "电话：{}", "联系电话{}，麻烦回电", "手机号码是 {}",
    "换绑到新号{}", "我的电话是{}", "call me at {}", "mobile: {}", "打我手机{}就行",
    "绑定的手机号{}已经停用了",
]
PHONE_BARE = [
    "{} 收不到短信", "{}", "回电 {}", "{} 这个号注册过吗", "用{}登录不了",
]

PASSWORD_FORWARD = [
    "我的密码是{}", "密码：{}", "密码 {}", "登录密码{}登不上", "支付密码是 {}", "新密码改成了{}还是不行",
    "密码设成了{}", "密码是“{}”", "密码是「{}」", "密码为'{}'", "交易密码 {}", "我把密码改为{}了",
    "密码是\"{}\"", "原密码{}忘了改没改", "password: {}", "my password is {}", "pwd {}", "my pass is {}",
    "Password={}", "passcode: {}", "密码就是 {}", "登录密码：“{}”",
]
PASSWORD_BACKWARD = [
    "{}是我的密码", "{} 是我的登录密码", "{}就是密码", "“{}”是我的支付密码", "{} is my password",
    "{} 是密码",
]
PIN_FORWARD = [
    "支付密码{}", "支付密码 {}", "我的支付密码是{}", "取款密码是 {}", "交易密码：{}", "密码是{}",
    "银行卡密码{}",
]
PIN_BACKWARD = ["{}是我的支付密码", "{} 是取款密码"]

CODE_FORWARD = [
    "验证码是{}", "验证码：{}", "验证码{}", "短信验证码 {}", "动态码{}", "校验码为{}", "收到的验证码是{}",
    "收到的码是 {}", "短信里的码是{}", "验证码 {} 输进去提示错误", "你们发的验证码{}", "code: {}",
    "OTP is {}", "my verification code is {}", "the code is {}", "验证码为：{}", "他让我把验证码{}报给他",
]
CODE_BACKWARD = ["{}是验证码", "{} 是我刚收到的验证码", "{}就是短信验证码", "{} is the code"]

EMAIL_PHRASES = ["我的邮箱是{}", "邮箱：{}", "账单发到 {} 就行", "{} 收不到邮件", "email: {}", "联系邮箱{}"]

CVV_PHRASES = ["cvv {}", "CVV2：{}", "安全码{}", "卡背面的三位数是{}", "卡背面三位数 {}", "CVC is {}",
               "安全码是 {}"]
EXPIRY_PHRASES = ["有效期{}", "有效期至{}", "exp {}", "到期日 {}", "valid thru {}", "有效期是{}"]


def fill(template: str, value: str) -> str:
    return template.replace("{}", value, 1)


# ---------------------------------------------------------------------------------------------
# Hard negatives
# ---------------------------------------------------------------------------------------------

HOTLINES = ["95588", "95599", "95533", "95566", "95555", "95559", "95595", "95528", "95188", "95017",
            "400-820-8888", "4008 123 123", "400-669-5566", "10086", "10010", "10000", "12315", "110",
            "96688"]


def negatives(g: Gen) -> List[str]:
    rng = g.rng
    out: List[str] = []

    def order_number() -> str:
        day = date(2023, 1, 1) + timedelta(days=rng.randint(0, 1400))
        return day.strftime("%Y%m%d") + g.digits(rng.choice([6, 8, 10, 12]))

    def luhn_order() -> str:
        length = rng.choice([16, 18, 19])
        body = rng.choice(["4", "5", "6", "3"]) + g.digits(length - 2)
        return body + luhn_check_digit(body)

    def amount() -> str:
        whole = rng.randint(1, 999999)
        r = rng.random()
        if r < 0.4:
            return f"{whole:,}.{rng.randint(0, 99):02d}"
        if r < 0.7:
            return f"{whole}.{rng.randint(0, 99):02d}"
        return f"{whole:,}"

    def a_date() -> str:
        day = date(2023, 1, 1) + timedelta(days=rng.randint(0, 1400))
        return rng.choice([day.strftime("%Y.%m.%d"), day.strftime("%Y/%m/%d"), day.strftime("%Y-%m-%d"),
                           f"{day.year}年{day.month}月{day.day}日", f"{day.month}.{day.day}", day.strftime("%Y%m%d"),
                           f"{day.year}.{day.month}.{day.day}"])

    templates = [
        lambda: f"订单号 {order_number()} 一直没发货",
        lambda: f"订单号{order_number()}退款多久到",
        lambda: f"交易单号：{order_number()}",
        lambda: f"流水号{luhn_order()}显示失败",
        lambda: f"商户单号 {luhn_order()} 查不到",
        lambda: f"账单号{luhn_order()}金额不对",
        lambda: f"会员号 {luhn_order()} 积分没到",
        lambda: f"金额 {amount()}",
        lambda: f"退款{amount()}元什么时候到",
        lambda: f"转账 ¥{amount()} 显示处理中",
        lambda: f"扣了我{amount()}块",
        lambda: f"余额还剩{amount()}",
        lambda: f"{a_date()} 付的款还没到",
        lambda: f"{a_date()}买的东西能退吗",
        lambda: f"截止到{a_date()}",
        lambda: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}扣的款",
        lambda: f"{a_date()} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} 的交易",
        lambda: f"客服电话{rng.choice(HOTLINES)}打不通",
        lambda: f"我打了{rng.choice(HOTLINES)}没人接",
        lambda: f"是{rng.choice(HOTLINES)}的客服吗",
        lambda: f"等了{rng.randint(2, 30)}天了",
        lambda: f"第{rng.randint(2, 9)}次申请了",
        lambda: f"一共{rng.randint(2, 50)}笔交易",
        lambda: f"密码输错{rng.randint(2, 6)}次被锁了",
        lambda: f"验证码{rng.randint(30, 120)}秒后才能重发",
        lambda: f"验证码{rng.randint(1, 10)}分钟都没收到",
        lambda: "验证码收不到怎么办",
        lambda: f"密码要{rng.choice(['8-16', '6-20', '8~16', '6'])}位吗",
        lambda: "支付密码忘了怎么找回",
        lambda: f"尾号{g.digits(4)}的卡扣了钱",
        lambda: f"手机尾号{g.digits(4)}收不到短信",
        lambda: f"卡号后四位{g.digits(4)}",
        lambda: f"快递单号 SF{g.digits(12)}",
        lambda: f"运单号YT{g.digits(13)}",
        lambda: f"app版本{rng.randint(5, 12)}.{rng.randint(0, 9)}.{rng.randint(0, 30)}闪退",
        lambda: f"限额{rng.randint(1, 50)}万怎么提高",
        lambda: f"红包{rng.randint(2, 99)}个没领",
        lambda: f"收款码{g.digits(5)}扫不了",
        lambda: f"错误码{rng.randint(1000, 9999)}是什么意思",
        lambda: f"提示error code {rng.randint(100, 9999)}",
        lambda: f"等了{rng.choice(['两三', '三四', '一两', '五六'])}天了",
        lambda: f"一直{rng.choice(['登不上', '没到账', '扣款失败'])}",
        lambda: f"零钱{rng.choice(['提现', '明细', '通'])}{rng.choice(['怎么用', '不见了', '到账慢'])}",
        lambda: f"转了{rng.choice(['一千二百', '三万五', '两千', '五百'])}块",
        lambda: f"{rng.choice(['二〇二五', '二零二六', '二〇二四'])}年{rng.choice(['三', '十一', '五'])}月的账单",
        lambda: f"{rng.randint(2023, 2026)}年{rng.randint(1, 12)}月的账单",
        lambda: f"IP {rng.randint(10, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)} 登录异常",
        lambda: f"利率{rng.randint(1, 9)}.{rng.randint(10, 99)}%",
        lambda: f"金额{amount()}，手续费{rng.randint(1, 9)}.{rng.randint(0, 99):02d}元",
        lambda: f"充值{rng.choice([50, 100, 200, 500])}元送{rng.randint(5, 50)}元",
        lambda: f"邮编{rng.choice(['100000', '200120', '518000', '310000'])}",
        lambda: f"第{rng.randint(1, 3)}季度账单，共{rng.randint(1000, 99999)}元",
    ]
    for i in range(520):
        out.append(templates[i % len(templates)]())
    return out


def negative_conversations(g: Gen) -> List[List[str]]:
    """Two messages whose numbers must stay: an order number or amount, then more digits."""
    rng = g.rng
    out = []
    for _ in range(40):
        day = date(2023, 1, 1) + timedelta(days=rng.randint(0, 1400))
        first = rng.choice([f"订单号 {day.strftime('%Y%m%d')}{g.digits(4)}", f"金额 {rng.randint(1, 9999)}",
                            f"{day.strftime('%Y.%m.%d')}", f"交易号 {day.strftime('%Y%m%d')}"])
        second = rng.choice([f"{g.digits(rng.randint(2, 6))}", f"{rng.randint(2, 9)}次", f"还差{rng.randint(1, 99)}元",
                             f"{g.digits(4)} 这个单"])
        out.append([first, second])
    return out


# ---------------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------------

def case(text: str, secrets: List[Tuple[str, str]], keep: Optional[List[str]] = None) -> Optional[Dict]:
    for _, value in secrets:
        if text.count(value) != 1:
            return None  # the value must name one place in the text
    out: Dict = {"text": text, "secrets": [{"kind": k, "value": v} for k, v in secrets]}
    if keep:
        out["keep"] = keep
    return out


def positives(g: Gen) -> List[Dict]:
    rng = g.rng
    out: List[Dict] = []

    def add(item: Optional[Dict]) -> None:
        if item:
            out.append(item)

    for _ in range(320):
        number = g.card()
        shown = g.render_number(number, "card")
        template = rng.choice(CARD_WITH_CONTEXT if rng.random() < 0.6 else CARD_BARE)
        add(case(fill(template, shown), [("card", shown)], [last4(number)]))
    for _ in range(220):
        number = g.id18()
        shown = g.render_number(number, "id_number")
        if rng.random() < 0.3:
            shown = shown[:-1] + shown[-1].lower()
        template = rng.choice(ID_WITH_CONTEXT if rng.random() < 0.6 else ID_BARE)
        add(case(fill(template, shown), [("id_number", shown)]))
    for _ in range(260):
        number = g.mobile()
        shown = g.render_phone(number)
        template = rng.choice(PHONE_WITH_CONTEXT if rng.random() < 0.6 else PHONE_BARE)
        add(case(fill(template, shown), [("phone", shown)], [last4(number)]))
    for _ in range(180):
        secret = g.password() if rng.random() < 0.5 else g.word_password()
        template = rng.choice(PASSWORD_FORWARD if rng.random() < 0.75 else PASSWORD_BACKWARD)
        add(case(fill(template, secret), [("password", secret)]))
    for _ in range(80):
        pin = g.pin()
        shown = pin if rng.random() < 0.7 else g.style_digits(pin, "chinese", "password")
        template = rng.choice(PIN_FORWARD if rng.random() < 0.8 else PIN_BACKWARD)
        add(case(fill(template, shown), [("password", shown)]))
    for _ in range(240):
        shown = g.render_code(g.code())
        template = rng.choice(CODE_FORWARD if rng.random() < 0.8 else CODE_BACKWARD)
        add(case(fill(template, shown), [("code", shown)]))
    for _ in range(110):
        address = g.email()
        add(case(fill(rng.choice(EMAIL_PHRASES), address), [("email", address)]))
    for _ in range(60):
        cvv = g.digits(rng.choice([3, 3, 3, 4]))
        add(case(fill(rng.choice(CVV_PHRASES), cvv), [("cvv", cvv)]))
    for _ in range(60):
        month, year = rng.randint(1, 12), rng.randint(2025, 2033)
        shown = rng.choice([f"{month:02d}/{year % 100:02d}", f"{month}/{year % 100:02d}", f"{month:02d}/{year}",
                            f"{year}年{month}月", f"{year}/{month:02d}", f"{month:02d} / {year % 100:02d}"])
        add(case(fill(rng.choice(EXPIRY_PHRASES), shown), [("expiry", shown)]))
    # Several secrets in one message.
    for _ in range(60):
        card, mobile = g.card(), g.mobile()
        card_shown, phone_shown = g.render_number(card, "card"), g.render_phone(mobile)
        add(case(f"卡号{card_shown}，预留手机{phone_shown}", [("card", card_shown), ("phone", phone_shown)],
                 [last4(card), last4(mobile)]))
    return out


def split_conversations(g: Gen) -> List[Dict]:
    """A number typed over two consecutive messages of one user."""
    rng = g.rng
    out: List[Dict] = []
    leads = {"card": ["卡号", "我的银行卡号是", "卡号：", ""], "phone": ["手机号", "电话", ""],
             "id_number": ["身份证号", "证件号码", ""]}
    for _ in range(120):
        kind = rng.choice(["card", "card", "phone", "id_number"])
        number = {"card": g.card, "phone": g.mobile, "id_number": g.id18}[kind]()
        # Numerals or ASCII, one style for the whole number; a group boundary or any cut.
        style = rng.choice(["ascii", "ascii", "ascii", "chinese", "fullwidth"])
        sep = rng.choice([" ", "", "-", "\u3000"]) if style != "chinese" else ""
        groups = g.groups(number, kind)
        cut_group = rng.randint(1, len(groups) - 1) if len(groups) > 1 else 1
        first_digits = "".join(groups[:cut_group])
        if len(first_digits) < 3 or len(number) - len(first_digits) < 2:
            cut = rng.randint(3, len(number) - 3)
            groups = [number[:cut], number[cut:]]
            cut_group = 1
        first = g.style_digits(sep.join(groups[:cut_group]), style, kind)
        second = g.style_digits(sep.join(groups[cut_group:]), style, kind)
        lead = rng.choice(leads[kind])
        message1 = f"{lead}{rng.choice([' ', ''])}{first}" if lead else first
        message2 = second + rng.choice(["", "", "，帮我查下", " 谢谢"])
        item: Dict = {"conversation": [message1, message2],
                      "secrets": [{"kind": kind, "value": second, "message": 1}],
                      "allowed": [{"kind": kind, "value": first, "message": 0}]}
        if kind in ("card", "phone"):
            item["keep"] = [last4(number)]
        out.append(item)
    return out


def build() -> Dict:
    g = Gen(SEED)
    positive = positives(g) + split_conversations(g)
    negative: List[Dict] = [{"text": t} for t in negatives(g)]
    negative += [{"conversation": c} for c in negative_conversations(g)]
    return {"positive": positive, "negative": negative}


def main() -> None:
    corpus = build()
    header = ("# Generated by tests/data/generate_pii_independent.py (seeded): masker cases built from the\n"
              "# formats' definitions, independent of the masker's rules. Do not edit by hand; regenerate.\n")
    text = header + yaml.safe_dump(corpus, allow_unicode=True, sort_keys=False, width=200)
    assert yaml.safe_load(text) == corpus, "the YAML must read back exactly"
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}: {len(corpus['positive'])} positive, {len(corpus['negative'])} negative cases")


if __name__ == "__main__":
    main()
