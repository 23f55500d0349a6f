"""bot/serving/patches.py: one install(), refused on a Rasa it was not written for, and then
Rasa's stock code serves (slower, the same answers)."""
from __future__ import annotations

import logging

import pytest
import requests

from bot.serving import patches
from tests.conftest import require_model


def test_this_rasa_is_supported():
    assert patches.refusal() is None


def test_an_unknown_version_is_refused(monkeypatch):
    import rasa

    monkeypatch.setattr(rasa, "__version__", "3.7.0")
    assert "Rasa 3.7.0 is not a version" in patches.refusal()


def test_a_missing_private_member_is_refused(monkeypatch):
    from rasa.core.policies.rule_policy import RulePolicy

    monkeypatch.delattr(RulePolicy, "_rule_key_to_state")
    assert patches.refusal() == "rasa.core.policies.rule_policy.RulePolicy._rule_key_to_state is missing"


def test_refused_install_keeps_rasa_stock_but_guards_the_api(monkeypatch, caplog):
    import rasa
    import rasa.core.run as run
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.shared.core.domain import Domain

    before = (Domain.states_for_tracker_history, RulePolicy._get_possible_keys)
    monkeypatch.setattr(run, "configure_app", run.configure_app)  # restored after the test
    original_configure_app = run.configure_app
    monkeypatch.setattr(patches, "_state", None)
    monkeypatch.setattr(rasa, "__version__", "3.7.0")
    with caplog.at_level(logging.WARNING, logger="bot.serving.patches"):
        assert patches.install() is False
    assert "NOT installed" in caplog.text and "3.7.0" in caplog.text
    assert not patches.installed()
    after = (Domain.states_for_tracker_history, RulePolicy._get_possible_keys)
    assert after == before
    assert run.configure_app is not original_configure_app  # the API guard does not depend on the version


def test_fast_processor_waits_for_install(monkeypatch):
    """Without installed patches a loaded agent keeps Rasa's own processor."""
    from bot.serving.processor import FastMessageProcessor, ensure_fast_processor

    class Agent:
        processor = object()

    monkeypatch.setattr(patches, "_state", False)
    agent = Agent()
    ensure_fast_processor(agent)
    assert not isinstance(agent.processor, FastMessageProcessor)


@pytest.mark.server
@pytest.mark.model
def test_unknown_rasa_version_serves_with_stock_code(tmp_path):
    """A real server whose Rasa reports another version: the refusal is logged, a question still
    gets its FAQ answer through Rasa's stock processor, and bad JSON on Rasa's API is still a 400."""
    require_model()
    from bot.security.tokens import api_headers
    from tests.servers import running_assistant

    fake = tmp_path / "fake_version"
    fake.mkdir()
    (fake / "sitecustomize.py").write_text("import rasa\nrasa.__version__ = '3.99.0'\n", encoding="utf-8")
    with running_assistant(tmp_path, console=False, extra_env={"PYTHONPATH": str(fake)}) as urls:
        r = requests.post(f"{urls['rasa']}/webhooks/rest/webhook",
                          json={"sender": "old-rasa", "message": "忘记登录密码了怎么办"}, timeout=60)
        assert r.status_code == 200
        texts = " ".join(m.get("text") or "" for m in r.json())
        assert "密码" in texts
        bad = requests.post(f"{urls['rasa']}/model/parse", data=b"{oops", headers=api_headers(), timeout=30)
        assert bad.status_code == 400
        log = open(urls["rasa_log"], encoding="utf-8").read()
    assert "NOT installed" in log and "3.99.0" in log
