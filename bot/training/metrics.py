"""Scores of an intent classifier as the reviewers compute them (pure functions)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

HANDOFF_PREDICTIONS = ("nlu_fallback", "out_of_scope", "contact_human")
OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True)
class Scores:
    in_scope_rows: int
    accuracy: float
    wrong_answer_rate: float
    out_of_scope_rows: int
    out_of_scope_handed_off: float
    per_intent: Dict[str, Dict[str, float]]


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def score(gold: Sequence[str], predicted: Sequence[str]) -> Scores:
    """Accuracy on in-scope rows; wrong answers (another topic given); OOS handed off."""
    pairs = list(zip(gold, predicted))
    in_scope = [(g, p) for g, p in pairs if g != OUT_OF_SCOPE]
    correct = sum(g == p for g, p in in_scope)
    wrong = sum(g != p and p not in HANDOFF_PREDICTIONS for g, p in in_scope)
    oos = [p for g, p in pairs if g == OUT_OF_SCOPE]
    handed = sum(p in HANDOFF_PREDICTIONS for p in oos)
    return Scores(
        in_scope_rows=len(in_scope),
        accuracy=_ratio(correct, len(in_scope)),
        wrong_answer_rate=_ratio(wrong, len(in_scope)),
        out_of_scope_rows=len(oos),
        out_of_scope_handed_off=_ratio(handed, len(oos)),
        per_intent=per_intent_scores(pairs),
    )


def per_intent_scores(pairs: List[Tuple[str, str]]) -> Dict[str, Dict[str, float]]:
    labels = sorted({g for g, _ in pairs})
    tp = Counter(g for g, p in pairs if g == p)
    gold_n = Counter(g for g, _ in pairs)
    pred_n = Counter(p for _, p in pairs)
    out = {}
    for label in labels:
        precision = _ratio(tp[label], pred_n[label])
        recall = _ratio(tp[label], gold_n[label])
        f1 = _ratio(int(2 * precision * recall * 1e6), int((precision + recall) * 1e6))
        out[label] = {"precision": precision, "recall": recall, "f1": f1, "support": gold_n[label]}
    return out


def confusion(gold: Sequence[str], predicted: Sequence[str]) -> Tuple[List[str], List[List[int]]]:
    labels = sorted(set(gold) | set(predicted))
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, predicted):
        matrix[index[g]][index[p]] += 1
    return labels, matrix
