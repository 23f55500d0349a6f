"""Precision and recall of the masker on a labelled corpus (tests/data/pii_corpus.yml).

A finding is right when it overlaps a labelled secret; a secret is caught when its digits or
characters no longer appear in the masked text (cards and phones keep only their last four).
Run: .venv/bin/python -m bot privacy-report
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import yaml

from bot.config import ROOT
from bot.privacy.masker import mask

CORPUS = ROOT / "tests" / "data" / "pii_corpus.yml"


@dataclass
class MaskerScore:
    true_findings: int = 0
    false_findings: int = 0
    caught: int = 0
    secrets: int = 0
    kept_lost: int = 0
    misses: List[str] = field(default_factory=list)
    false_alarms: List[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        total = self.true_findings + self.false_findings
        return self.true_findings / total if total else 1.0

    @property
    def recall(self) -> float:
        return self.caught / self.secrets if self.secrets else 1.0

    def as_dict(self) -> Dict[str, float]:
        return {"precision": round(self.precision, 4), "recall": round(self.recall, 4), "secrets": self.secrets,
                "findings": self.true_findings + self.false_findings, "kept_digits_lost": self.kept_lost}


def _span(text: str, value: str) -> range:
    start = text.find(value)
    return range(start, start + len(value)) if start >= 0 else range(0)


def score(corpus: Dict) -> MaskerScore:
    result = MaskerScore()
    for case in corpus["positive"]:
        masked = mask(case["text"])
        spans = [_span(masked.source, s["value"]) for s in case["secrets"]]
        for finding in masked.findings:
            if any(finding.start < s.stop and s.start < finding.end for s in spans):
                result.true_findings += 1
            else:
                result.false_findings += 1
                result.false_alarms.append(f"{case['text']} -> {masked.text}")
        for secret in case["secrets"]:
            result.secrets += 1
            if secret["value"] in masked.text:
                result.misses.append(f"{secret['kind']}: {case['text']} -> {masked.text}")
            else:
                result.caught += 1
        result.kept_lost += sum(1 for digits in case.get("keep", []) if digits not in masked.text)
    for case in corpus["negative"]:
        masked = mask(case["text"])
        if masked.findings:
            result.false_findings += len(masked.findings)
            result.false_alarms.append(f"{case['text']} -> {masked.text}")
    return result


def load_corpus(path: Path = CORPUS) -> Dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def main(argv: Optional[List[str]] = None) -> int:
    corpus = load_corpus()
    result = score(corpus)
    print(f"masker on {len(corpus['positive'])} positive / {len(corpus['negative'])} negative cases: "
          f"precision {result.precision:.4f}, recall {result.recall:.4f}")
    for line in result.misses[:20]:
        print("  missed:", line)
    for line in result.false_alarms[:20]:
        print("  false alarm:", line)
    return 0

