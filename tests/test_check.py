import shutil

from bot.faq.check import check_project
from tests.conftest import ROOT


def test_project_is_consistent():
    assert check_project() == []


def _copy_project(tmp_path):
    for part in ("domain.yml", "data"):
        src = ROOT / part
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / part)
    return tmp_path


def test_shared_example_is_reported(tmp_path):
    root = _copy_project(tmp_path)
    (root / "data/nlu/clash.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: refund\n  examples: |\n    - 你好\n', encoding="utf-8"
    )
    problems = check_project(root, root / "data/faq.yml")
    assert any("shared by intents ['greet', 'refund']" in p for p in problems)


def test_missing_rule_and_domain_intent_are_reported(tmp_path):
    root = _copy_project(tmp_path)
    rules = root / "data/rules/faq.yml"
    rules.write_text(rules.read_text(encoding="utf-8").replace("intent: refund", "intent: greet"), encoding="utf-8")
    domain = root / "domain.yml"
    domain.write_text(domain.read_text(encoding="utf-8").replace("  - feedback\n", ""), encoding="utf-8")
    problems = check_project(root, root / "data/faq.yml")
    assert any("intent 'refund': no rule handles it" in p for p in problems)
    assert any("intent 'feedback': missing from 'intents'" in p for p in problems)


def test_too_few_examples_and_malformed_nlu_file(tmp_path):
    root = _copy_project(tmp_path)
    for f in (root / "data/nlu").glob("*.yml"):
        f.unlink()
    (root / "data/nlu/broken.yml").write_text("nlu: [oops", encoding="utf-8")
    problems = check_project(root, root / "data/faq.yml")
    assert any("broken.yml" in p and "malformed YAML" in p for p in problems)
    assert any("intent 'refund': field 'examples' has 0" in p for p in problems)
