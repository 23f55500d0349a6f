"""What the simulated users of `bot.devtools.simulation.simulate` say: wallet questions in everyday words.

Written for the demo day, not taken from any evaluation set. The "gap" questions ask about
things the FAQ does not cover, in several similar wordings, so the gap list has groups to show.
"""
from __future__ import annotations

FAQ_QUESTIONS = {
    "login_failure": ["App 一直登不上去怎么办", "登录的时候老提示网络异常", "换了新手机以后账号登录不了"],
    "forgot_password": ["支付密码忘记了怎么找回", "登录密码想不起来了怎么办", "验证码短信等了好半天都没来"],
    "payment_failure": ["付款的时候一直显示支付失败", "转账转不出去是什么原因", "用银行卡付钱总是不成功"],
    "refund": ["退款一般多久能到账", "申请的退款到现在还没收到", "商家说已经退款了但我没看到钱"],
    "account_frozen": ["我的账户被冻结了怎么解冻", "账号突然被限制使用了", "为什么我的钱包被冻结了"],
    "account_security": ["有人在别的手机上登录了我的账号", "怀疑我的账户被盗了怎么办"],
    "change_account_info": ["怎么更换绑定的手机号", "想把绑定的银行卡解绑"],
    "service_unreachable": ["客服电话一直打不通", "你们的热线怎么总是没人接"],
    "complaint": ["我要投诉你们的服务态度", "对这次的处理结果很不满意，我要投诉"],
    "feedback": ["给你们提个建议，希望界面简单一点", "希望 App 能加一个夜间模式"],
    "app_problem": ["App 一打开就闪退", "页面一直在转圈加载不出来"],
    "service_status": ["现在系统是不是在维护", "今天支付功能是不是出故障了"],
}
# Popularity of the topics in the simulated day (relative weights).
TOPIC_WEIGHTS = {
    "refund": 14, "payment_failure": 13, "forgot_password": 11, "login_failure": 10, "account_frozen": 8,
    "app_problem": 6, "change_account_info": 5, "account_security": 4, "service_status": 4,
    "service_unreachable": 3, "complaint": 3, "feedback": 2,
}
FRAUD_REPORTS = ["有人冒充客服让我把钱转到安全账户", "刚才有人打电话说要屏幕共享帮我退款"]
# Personal data typed by users; the channels mask it before anything stores it.
WITH_PERSONAL_DATA = ["我的手机号 13912345678 收不到验证码", "卡号 6222 0212 3456 7894 付款一直失败"]

GAP_CLUSTERS = [
    ["怎么开通数字人民币钱包", "数字人民币在哪里开通", "能开通数字人民币吗", "数字人民币钱包怎么开"],
    ["可以充值美元吗", "能不能用美元充值", "支持外币充值吗", "美元能充进钱包里吗"],
    ["积分可以兑换什么", "我的积分怎么兑换话费", "积分在哪里兑换", "积分能换东西吗"],
    ["转账手续费能开发票吗", "怎么开电子发票", "发票在哪里申请"],
    ["怎么给父母开通亲情卡", "亲情卡怎么绑定", "亲情卡的额度怎么设置"],
]
OUT_OF_SCOPE = ["帮我订一张去北京的机票", "今天天气怎么样", "推荐一部好看的电影", "明天股票会涨吗",
                "附近有什么好吃的餐厅"]
HUMAN = ["我要找人工客服", "转人工", "请帮我接人工"]
GREETINGS = ["你好", "在吗", "您好，请问有人吗"]
THANKS = ["谢谢", "好的谢谢"]
GOODBYES = ["再见", "拜拜"]
BOT_CHALLENGE = ["你是机器人吗", "你是真人吗"]
YES_TYPED = ["是的", "解决了"]
NO_TYPED = ["没有解决", "不是"]
UNHELPFUL = ["没用", "这个回答没有用"]
WAITING = ["好的，我等一下", "麻烦快一点", "我先等着"]
CANCEL = ["取消转人工", "不用人工了"]
AGENT_REPLIES = ["您好，我是人工客服，已经看到您的问题，正在为您核实。", "您好，请问方便提供一下相关订单号吗？",
                 "您好，这个情况我来帮您处理，请稍等。"]
CLOSE_NOTES = ["已为用户核实并解答", "已指导用户自助处理", "已登记问题并告知处理时效"]
RATING_WEIGHTS = {5: 45, 4: 28, 3: 12, 2: 8, 1: 7}
RATING_TEXTS = {5: ["5", "5分", "五星"], 4: ["4", "4 分"], 3: ["3"], 2: ["2"], 1: ["1"]}

# Conversations started per local hour (relative): quiet at night, busy late morning and evening.
HOURLY_PROFILE = [2, 1, 1, 1, 1, 2, 4, 7, 10, 12, 13, 12, 10, 11, 12, 11, 10, 10, 12, 14, 15, 13, 9, 5]
CHANNEL_WEIGHTS = {"socketio": 58, "wechat": 22, "rest": 12, "telegram": 8}
SCENARIO_WEIGHTS = {
    "faq_yes": 33, "faq_no": 12, "faq_unhelpful": 3, "two_questions": 5, "gap": 16, "out_of_scope": 7,
    "human": 8, "fraud": 3, "small_talk": 8, "personal_data": 3, "vague": 2,
}
VAGUE = ["那个东西怎么搞", "我想问个事", "帮我处理一下吧"]
