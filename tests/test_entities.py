from bot.nlu.entities import extract_entities
from tests.conftest import ROOT

ENTITIES = str(ROOT / "data" / "entities.yml")


def values(text):
    return [(e["entity"], e["value"]) for e in extract_entities(text, ENTITIES)]


def test_payment_channels_mapped_to_canonical_values():
    assert values("退款到银行卡要多久，余额可以吗") == [("payment_channel", "银行卡"), ("payment_channel", "余额")]
    assert values("退回零钱了吗") == [("payment_channel", "余额")]


def test_bank_amount_and_order_number():
    assert ("bank", "工商银行") in values("工行卡付款200元失败")
    assert ("amount", "200") in values("工行卡付款200元失败")
    assert ("amount", "35.5") in values("￥35.5 被扣了两次")
    assert ("order_id", "202611270001234") in values("订单号202611270001234退款")


def test_offsets_point_into_the_text():
    text = "我想退款到信用卡"
    (ent,) = extract_entities(text, ENTITIES)
    assert text[ent["start"]:ent["end"]] == "信用卡"


def test_nothing_found_in_plain_text():
    assert values("") == [] and values("你好") == []
