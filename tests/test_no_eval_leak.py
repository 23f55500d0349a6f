"""The evaluation questions (../shared/eval) are test data only: none may appear in the
project's training data, rules, dictionaries, answers or tests."""

import pytest

from tests.conftest import ROOT

EVAL = ROOT.parent / "shared" / "eval" / "realq.tsv"
SKIP_DIRS = {".git", ".venv", "node_modules", "models", "reports", "var", "logs", "__pycache__"}
SUFFIXES = {".yml", ".yaml", ".txt", ".py", ".json", ".md", ".tsv", ".csv", ".js", ".html"}


def test_no_evaluation_question_in_the_project():
    if not EVAL.exists():
        pytest.skip(f"{EVAL} not present")
    rows = [line.split("\t")[0].strip() for line in EVAL.read_text(encoding="utf-8").splitlines() if "\t" in line][1:]
    rows = [r for r in rows if len(r) >= 6]
    leaks = []
    for path in ROOT.rglob("*"):
        if path.suffix not in SUFFIXES or SKIP_DIRS & set(path.relative_to(ROOT).parts) or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        leaks += [f"{path.relative_to(ROOT)}: {r}" for r in rows if r in text]
    assert not leaks, "evaluation questions found in the project:\n" + "\n".join(leaks[:20])
