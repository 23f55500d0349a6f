"""Write tests/data/pii_corpus.yml: the masker's test corpus (seeded, so it is reproducible).

Positive cases name the exact secrets that must disappear (and the last four digits that must
stay for cards and phones), some over two messages of one conversation (`conversation`, the
secret's `message`, the earlier part `allowed`); negative cases are wallet messages full of numbers that must stay
as they are: order and transaction numbers (some pass Luhn), amounts, dates, times, hotlines.
Run: .venv/bin/python scripts/make_pii_corpus.py
"""
from __future__ import annotations

import random
import string
from datetime import date, timedelta
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "pii_corpus.yml"
rng = random.Random(20261127)


def luhn_complete(prefix: str, length: int) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for check in string.digits:
        digits = body + check
        total = sum((int(c) * 2 - 9 if int(c) * 2 > 9 else int(c) * 2) if i % 2 else int(c)
                    for i, c in enumerate(reversed(digits)))
        if total % 10 == 0:
            return digits
    raise AssertionError


def card() -> str:
    prefix, length = rng.choice([("622202", 19), ("621700", 19), ("622848", 19), ("625", 16), ("4", 16),
                                 ("51", 16), ("356", 16), ("6214", 16), ("6228", 19), ("37", 15)])
    return luhn_complete(prefix, length)


def grouped(number: str, sep: str) -> str:
    return sep.join(number[i:i + 4] for i in range(0, len(number), 4))


def id18() -> str:
    area = rng.choice(["110105", "310104", "440305", "510107", "330106", "420111", "320102", "610113"])
    born = date(1960, 1, 1) + timedelta(days=rng.randint(0, 16000))
    body = area + born.strftime("%Y%m%d") + f"{rng.randint(0, 999):03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]


def id15() -> str:
    area = rng.choice(["110105", "310104", "440305", "510107"])
    born = date(1940, 1, 1) + timedelta(days=rng.randint(0, 20000))
    return area + born.strftime("%y%m%d") + f"{rng.randint(0, 999):03d}"


def phone() -> str:
    return rng.choice(["13", "15", "17", "18", "19", "14", "16"]) + "".join(rng.choice(string.digits) for _ in range(9))


def email() -> str:
    name = "".join(rng.choice(string.ascii_lowercase + string.digits + "._") for _ in range(rng.randint(4, 12))).strip("._") or "user"
    return f"{name}@{rng.choice(['qq.com', '163.com', 'gmail.com', 'foxmail.com', 'company.com.cn', 'outlook.com'])}"


def code() -> str:
    return "".join(rng.choice(string.digits) for _ in range(rng.choice([4, 6, 6, 6, 8])))


def password() -> str:
    return rng.choice(["Abc", "wx", "zhang", "Li", "pay", "qwe", "Aa", "mima"]) + rng.choice(["123", "@2026", "888", "_520", "!9", "1314", "#66"]) + rng.choice(["", "x", "Q", "8"])


def pin() -> str:
    return "".join(rng.choice(string.digits) for _ in range(6))


def order() -> str:
    day = date(2026, 1, 1) + timedelta(days=rng.randint(0, 330))
    return day.strftime("%Y%m%d") + "".join(rng.choice(string.digits) for _ in range(rng.choice([8, 10, 12])))


def luhn_order() -> str:
    """An order-like number that passes Luhn and starts like a card: only its context says order."""
    return luhn_complete(rng.choice(["4", "5", "6"]) + str(rng.randint(0, 9)), rng.choice([16, 18]))


def amount() -> str:
    return rng.choice([f"{rng.randint(1, 99999)}", f"{rng.randint(1, 9999)}.{rng.randint(0, 99):02d}"])


def some_date() -> str:
    day = date(2026, 1, 1) + timedelta(days=rng.randint(0, 330))
    return rng.choice([day.strftime("%Y-%m-%d"), day.strftime("%Y/%m/%d"), f"{day.month}月{day.day}日", day.strftime("%Y%m%d")])


def mm_yy() -> tuple:
    return f"{rng.randint(1, 12):02d}", f"{rng.randint(27, 32)}"


POSITIVE = [
    lambda c=None: ("我的银行卡号是{0}，帮我查下退款", [("card", card())]),
    lambda: ("卡号{0}绑定失败", [("card", grouped(card(), " "))]),
    lambda: ("信用卡 {0} 被扣了两次钱", [("card", grouped(card(), "-"))]),
    lambda: ("{0}这张卡怎么解绑", [("card", card())]),
    lambda: ("提现到{0}一直没到账", [("card", grouped(card(), " "))]),
    lambda: ("用的是 {0} 付的款", [("card", card())]),
    lambda: ("我手机号{0}收不到验证码", [("phone", phone())]),
    lambda: ("电话 {0} 麻烦回电", [("phone", (lambda p: f"{p[:3]} {p[3:7]} {p[7:]}")(phone()))]),
    lambda: ("联系方式：+86 {0}", [("phone", phone())]),
    lambda: ("换了新号码{0}，旧号不用了", [("phone", (lambda p: f"{p[:3]}-{p[3:7]}-{p[7:]}")(phone()))]),
    lambda: ("打我电话0086{0}", [("phone", phone())]),
    lambda: ("身份证号{0}实名认证失败", [("id_number", id18())]),
    lambda: ("我的证件号码是 {0}", [("id_number", id18())]),
    lambda: ("{0} 这个身份证被别人绑了", [("id_number", id18())]),
    lambda: ("老身份证{0}还能认证吗", [("id_number", id15())]),
    lambda: ("我的邮箱是{0}", [("email", email())]),
    lambda: ("账单发到 {0} 就行", [("email", email())]),
    lambda: ("{0}收不到对账单", [("email", email())]),
    lambda: ("验证码是{0}", [("code", code())]),
    lambda: ("收到的验证码 {0} 要告诉你吗", [("code", code())]),
    lambda: ("短信码{0}输进去提示错误", [("code", code())]),
    lambda: ("动态码：{0}", [("code", code())]),
    lambda: ("{0}是我刚收到的验证码", [("code", code())]),
    lambda: ("他让我把验证码{0}报给他", [("code", code())]),
    lambda: ("我的登录密码是{0}", [("password", password())]),
    lambda: ("支付密码{0}，为什么付不了", [("password", pin())]),
    lambda: ("密码：{0} 登不上", [("password", password())]),
    lambda: ("新密码改成了{0}还是不行", [("password", password())]),
    lambda: ("password: {0}", [("password", password())]),
    lambda: ("交易密码是 {0}", [("password", pin())]),
    lambda: ("卡背面三位数{0}", [("cvv", f"{rng.randint(100, 999)}")]),
    lambda: ("cvv是{0}", [("cvv", f"{rng.randint(100, 999)}")]),
    lambda: ("信用卡有效期{0}", [("expiry", "/".join(mm_yy()))]),
    lambda: ("卡号{0} 有效期{1} 安全码{2}", [("card", card()), ("expiry", "/".join(mm_yy())), ("cvv", f"{rng.randint(100, 999)}")]),
    lambda: ("手机{0}，验证码{1}", [("phone", phone()), ("code", code())]),
    lambda: ("实名是{0}，手机{1}", [("id_number", id18()), ("phone", phone())]),
]

NEGATIVE = [
    lambda: f"订单号{order()}一直没发货",
    lambda: f"交易号 {order()} 退款多久到",
    lambda: f"流水号{luhn_order()}显示失败",
    lambda: f"商户订单号：{luhn_order()}",
    lambda: f"退款{amount()}元什么时候到",
    lambda: f"转账 {amount()} 显示处理中",
    lambda: f"{some_date()}买的东西还没退款",
    lambda: f"等了{rng.randint(2, 30)}天了还没到账",
    lambda: f"验证码{rng.randint(1, 10)}分钟都没收到",
    lambda: "验证码收不到怎么办",
    lambda: f"密码是{rng.choice(['几位', '6位', '多少位'])}数字",
    lambda: f"密码输错{rng.randint(2, 5)}次被锁了",
    lambda: f"新密码要{rng.choice(['8-16', '6-20', '8~16'])}位吗",
    lambda: f"客服电话是{rng.choice(['95188', '95017', '95555', '400-820-8888', '4008-123-123'])}吗",
    lambda: f"尾号{rng.randint(1000, 9999)}的卡扣了钱",
    lambda: f"手机尾号{rng.randint(1000, 9999)}收不到短信",
    lambda: f"app版本{rng.randint(8, 12)}.{rng.randint(0, 9)}.{rng.randint(0, 30)}闪退",
    lambda: f"快递单号 SF{rng.randint(10**11, 10**12 - 1)}",
    lambda: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} 付的款没到",
    lambda: f"余额还有{amount()}",
    lambda: f"第{rng.randint(2, 9)}次申请退款了",
    lambda: f"优惠券有效期{rng.randint(3, 30)}天",
    lambda: f"工单号{order()}没人处理",
    lambda: f"金额¥{amount()}，手续费{rng.randint(1, 9)}元",
    lambda: f"账单号{luhn_order()}金额不对",
    lambda: f"{rng.randint(2020, 2026)}年{rng.randint(1, 12)}月的账单",
    lambda: f"冻结了{rng.randint(24, 72)}小时",
    lambda: f"限额{rng.randint(1, 50)}万怎么提高",
    lambda: f"编号{luhn_order()}的退款申请",
    lambda: f"支付密码忘了，{rng.choice(['怎么找回', '能重置吗', '要多久'])}",
    lambda: f"运单号{rng.randint(10**14, 10**15 - 1)}查不到",
    lambda: f"{rng.randint(1, 12)}月{rng.randint(1, 28)}号扣款{amount()}元",
    lambda: f"验证码{rng.randint(60, 120)}秒后才能重发",
    lambda: f"红包{rng.randint(2, 99)}个没领",
    lambda: f"会员号{luhn_order()}积分没到",
    lambda: f"交易时间{rng.randint(20260101000000, 20261127235959)}",
    lambda: f"{rng.randint(1000, 9999)}元的验证码没收到",
    lambda: f"收款码{rng.randint(10000, 99999)}扫不了",
]


# Round two (issue 16): the forms an attacker found the first masker missed. Drawn after the
# cases above from the same seeded generator, so those stay exactly as they were.
CN_SMALL = dict(zip("0123456789", "零一二三四五六七八九"))
CN_BANKER = dict(zip("0123456789", "零壹贰叁肆伍陆柒捌玖"))


def chinese(number: str, yao: bool = False, banker: bool = False) -> str:
    table = CN_BANKER if banker else CN_SMALL
    return "".join("幺" if yao and d == "1" else table.get(d, d) for d in number)


def o_for_zero(number: str) -> str:
    """0 typed as O and 1 as l (every other one)."""
    out, n = [], 0
    for d in number:
        if d in "01":
            n += 1
            out.append(("O" if d == "0" else "l") if n % 2 else d)
        else:
            out.append(d)
    return "".join(out)


def phone_groups(number: str, sep: str) -> str:
    return f"{number[:3]}{sep}{number[3:7]}{sep}{number[7:]}"


def id_groups(number: str, sep: str) -> str:
    return f"{number[:6]}{sep}{number[6:14]}{sep}{number[14:]}"


def _keep_card(c: str) -> list:
    return [c[-4:]]


ROUND_TWO = [
    lambda: (lambda c: ("卡号{0}扣款失败", [("card", grouped(c, "\u3000"))], _keep_card(c)))(card()),
    lambda: (lambda c: ("银行卡 {0}", [("card", grouped(c, "_"))], _keep_card(c)))(card()),
    lambda: (lambda c: ("卡号是{0}", [("card", grouped(c, "/"))], _keep_card(c)))(card()),
    lambda: (lambda c: ("用 {0} 付的款", [("card", grouped(c, "."))], _keep_card(c)))(card()),
    lambda: (lambda c: ("信用卡{0}被盗刷", [("card", grouped(c, ","))], _keep_card(c)))(card()),
    lambda: (lambda c: ("卡号 {0} 绑不上", [("card", grouped(c, "—"))], _keep_card(c)))(card()),
    lambda: (lambda c: ("提现到 {0} 没到账", [("card", grouped(c, "  "))], _keep_card(c)))(card()),
    lambda: (lambda c: ("我的卡号{0}", [("card", chinese(c))], _keep_card(c)))(card()),
    lambda: (lambda c: ("卡号{0}", [("card", chinese(c, banker=True))], _keep_card(c)))(card()),
    lambda: (lambda c: ("卡号 {0} 怎么解绑", [("card", grouped(o_for_zero(c), " "))], _keep_card(c)))(card()),
    lambda: ("身份证号{0}认证失败", [("id_number", id_groups(id18(), "."))], []),
    lambda: ("身份证 {0}", [("id_number", id_groups(id18(), "\u3000"))], []),
    lambda: ("身份证号码是{0}", [("id_number", chinese(id18()))], []),
    lambda: (lambda p: ("手机 {0} 收不到短信", [("phone", phone_groups(p, "\u3000"))], [p[-4:]]))(phone()),
    lambda: (lambda p: ("电话{0}", [("phone", phone_groups(p, "."))], [p[-4:]]))(phone()),
    lambda: (lambda p: ("手机号{0}", [("phone", chinese(p, yao=True))], [p[-4:]]))(phone()),
    lambda: ("密码 {0}", [("password", password())], []),
    lambda: ("支付密码 {0}", [("password", pin())], []),
    lambda: ("密码是“{0}”", [("password", password())], []),
    lambda: ("{0} 是我的密码", [("password", password())], []),
    lambda: ("my pass is {0}", [("password", password())], []),
    lambda: ("密码是{0}", [("password", chinese(pin()))], []),
    lambda: ("验证码是{0}", [("code", chinese(code()))], []),
    lambda: ("收到的码是 {0}", [("code", " ".join(code()))], []),
    lambda: ("OTP is {0}", [("code", code())], []),
]

ROUND_TWO_CONVERSATIONS = [
    lambda: (lambda c: (["卡号 " + grouped(c[:12], " "), grouped(c[12:], " ")], "card", c))(card()),
    lambda: (lambda c: ([grouped(c[:8], " "), grouped(c[8:], " ")], "card", c))(
        luhn_complete(rng.choice(["622202", "621700", "4", "51"]), 16)),
    lambda: (lambda p: (["手机 " + p[:7], p[7:]], "phone", p))(phone()),
    lambda: (lambda i: (["身份证号 " + i[:10], i[10:]], "id_number", i))(id18()),
]

ROUND_TWO_NEGATIVE = [
    lambda: f"订单号 {order()}",
    lambda: f"金额 {rng.randint(1, 99)},{rng.randint(100, 999)}.{rng.randint(10, 99)}",
    lambda: f"{rng.randint(2024, 2027)}.{rng.randint(1, 12)}.{rng.randint(1, 28)}",
    lambda: rng.choice(["95588", "95599", "95533", "95188", "10086", "400-820-8888"]),
    lambda: f"IP {rng.randint(100, 199)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)} 登录异常",
    lambda: "幺三八的号码是不是停机了",
    lambda: rng.choice(["一直扣款失败", "零钱提现不到账", "等了两三天", "转了一千二百块", "二〇二五年三月的账单"]),
    lambda: f"错误码{rng.randint(1000, 9999)}是什么意思",
    lambda: f"提示 error code {rng.randint(100, 9999)}",
    lambda: f"卡号后四位{rng.randint(1000, 9999)}",
    lambda: "密码 忘了",
    lambda: "pass 不了审核",
]


def round_two() -> tuple:
    positives, negatives = [], []
    for i in range(len(ROUND_TWO) * 6):
        template, secrets, keep = ROUND_TWO[i % len(ROUND_TWO)]()
        case = {"text": template.format(*[value for _, value in secrets]),
                "secrets": [{"kind": k, "value": v} for k, v in secrets]}
        if keep:
            case["keep"] = keep
        positives.append(case)
    for i in range(len(ROUND_TWO_CONVERSATIONS) * 6):
        messages, kind, number = ROUND_TWO_CONVERSATIONS[i % len(ROUND_TWO_CONVERSATIONS)]()
        case = {"conversation": messages, "secrets": [{"kind": kind, "value": messages[1], "message": 1}],
                "allowed": [{"kind": kind, "value": messages[0].split(" ", 1)[-1] if " " in messages[0][:6]
                             else messages[0], "message": 0}]}
        if kind in ("card", "phone"):
            case["keep"] = [number[-4:]]
        positives.append(case)
    for i in range(len(ROUND_TWO_NEGATIVE) * 6):
        negatives.append({"text": ROUND_TWO_NEGATIVE[i % len(ROUND_TWO_NEGATIVE)]()})
    # The attacker's own examples, as written in issue 16.
    positives += [
        {"text": "密码 Abc12345xyz", "secrets": [{"kind": "password", "value": "Abc12345xyz"}]},
        {"text": "支付密码 135790", "secrets": [{"kind": "password", "value": "135790"}]},
        {"text": "密码是“zxcv9876”", "secrets": [{"kind": "password", "value": "zxcv9876"}]},
        {"text": "abc12345 是我的密码", "secrets": [{"kind": "password", "value": "abc12345"}]},
        {"text": "my pass is hunter2024", "secrets": [{"kind": "password", "value": "hunter2024"}]},
        {"text": "密码是二四六八一三", "secrets": [{"kind": "password", "value": "二四六八一三"}]},
        {"text": "验证码是四八三九二零", "secrets": [{"kind": "code", "value": "四八三九二零"}]},
        {"text": "收到的码是 7 3 9 1 5 2", "secrets": [{"kind": "code", "value": "7 3 9 1 5 2"}]},
        {"conversation": ["卡号 6222 0212 3456", "7890 123"],
         "secrets": [{"kind": "card", "value": "6222 0212 3456", "message": 0},
                     {"kind": "card", "value": "7890 123", "message": 1}], "keep": ["0123"]},
    ]
    negatives += [{"text": t} for t in ("订单号 2023112812345678", "金额 1,234.56", "2026.11.30", "95588")]
    return positives, negatives


def build() -> dict:
    positives, negatives = [], []
    i = 0
    while len(positives) < 216:
        template, secrets = POSITIVE[i % len(POSITIVE)]()
        text = template.format(*[value for _, value in secrets])
        case = {"text": text, "secrets": [{"kind": k, "value": v} for k, v in secrets]}
        keep = [v.replace(" ", "").replace("-", "")[-4:] for k, v in secrets if k in ("card", "phone")]
        if keep:
            case["keep"] = keep
        positives.append(case)
        i += 1
    i = 0
    while len(negatives) < 216:
        negatives.append({"text": NEGATIVE[i % len(NEGATIVE)]()})
        i += 1
    more_positives, more_negatives = round_two()
    return {"positive": positives + more_positives, "negative": negatives + more_negatives}


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    header = "# Generated by scripts/make_pii_corpus.py (seeded); the masker's precision/recall corpus.\n"
    OUT.write_text(header + yaml.safe_dump(build(), allow_unicode=True, sort_keys=False, width=200), encoding="utf-8")
    print(f"wrote {OUT}")
