"""The FAQ's wordings are training examples of their topic (config.yml `importers:`), and the
model fingerprint follows the wordings but not the answers."""
from __future__ import annotations

import shutil

import yaml

from bot.faq.model import load_faq
from bot.training.faq_importer import FaqWordingsImporter
from bot.training.inputs import fingerprint
from tests.conftest import ROOT


def test_every_wording_becomes_an_example_of_its_topic():
    faq = load_faq(ROOT / "data" / "faq.yml")
    data = FaqWordingsImporter(str(ROOT / "config.yml")).get_nlu_data()
    pairs = {(m.get("text"), m.get("intent")) for m in data.intent_examples}
    for topic in faq.topics.values():
        for question in topic.questions:
            for text in (question.question, *question.phrasings):
                assert (text, topic.name) in pairs


def test_rasa_reads_both_importers_from_config_yml():
    from rasa.shared.importers.importer import TrainingDataImporter

    importer = TrainingDataImporter.load_from_config(
        str(ROOT / "config.yml"), str(ROOT / "domain.yml"), [str(ROOT / "data" / "nlu")])
    texts = {m.get("text") for m in importer.get_nlu_data("zh").intent_examples}
    faq = load_faq(ROOT / "data" / "faq.yml")
    first = faq.topics["withdrawal"].questions[0]
    assert first.question in texts  # from the FAQ
    assert len(texts) > sum(len(q.phrasings) + 1 for t in faq.topics.values() for q in t.questions)


def _project_copy(tmp_path):
    for name in ("config.yml", "domain.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "data").mkdir()
    shutil.copy(ROOT / "data" / "faq.yml", tmp_path / "data" / "faq.yml")
    return tmp_path


def test_the_fingerprint_follows_wordings_not_answers(tmp_path):
    root = _project_copy(tmp_path)
    path = root / "data" / "faq.yml"
    before = fingerprint(root)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["topics"]["withdrawal"]["questions"][0]["answer"] += "（答案改了）"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert fingerprint(root) == before
    raw["topics"]["withdrawal"]["questions"][0]["phrasings"].append("余额转出到卡里的步骤")
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert fingerprint(root) != before
