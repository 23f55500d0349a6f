"""Scores of an intent classifier as the reviewers compute them (pure functions)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from bot.topics import FAQ_TOPICS

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


def labels_of(gold: str) -> Tuple[str, ...]:
    """`a|b`: either topic is right; `out_of_scope|x`: x, or a hand-off/decline, is right."""
    return tuple(label.strip() for label in gold.split("|") if label.strip())


def is_right(gold: str, predicted: str) -> bool:
    labels = labels_of(gold)
    return predicted in labels or (OUT_OF_SCOPE in labels and predicted in HANDOFF_PREDICTIONS)


def resolved_gold(gold: str, predicted: str) -> str:
    """The one label a row counts under: the predicted one when it is right, else the first."""
    labels = labels_of(gold)
    return predicted if predicted in labels else labels[0]


def score(gold: Sequence[str], predicted: Sequence[str]) -> Scores:
    """Accuracy on in-scope rows; wrong answers (another topic given); OOS handed off.
    Rows labelled exactly `out_of_scope` are the out-of-scope rows; every other row is in scope."""
    pairs = list(zip(gold, predicted))
    in_scope = [(g, p) for g, p in pairs if labels_of(g) != (OUT_OF_SCOPE,)]
    correct = sum(is_right(g, p) for g, p in in_scope)
    wrong = sum(not is_right(g, p) and p not in HANDOFF_PREDICTIONS for g, p in in_scope)
    oos = [p for g, p in pairs if labels_of(g) == (OUT_OF_SCOPE,)]
    handed = sum(p in HANDOFF_PREDICTIONS for p in oos)
    return Scores(
        in_scope_rows=len(in_scope),
        accuracy=_ratio(correct, len(in_scope)),
        wrong_answer_rate=_ratio(wrong, len(in_scope)),
        out_of_scope_rows=len(oos),
        out_of_scope_handed_off=_ratio(handed, len(oos)),
        per_intent=per_intent_scores(pairs, FAQ_TOPICS),
    )


def per_intent_scores(pairs: List[Tuple[str, str]], labels: Sequence[str] = ()) -> Dict[str, Dict[str, float]]:
    """Per label: support = rows listing it; recall = those answered right; precision = of the
    rows predicted as it, those where it was right. `labels`: report these even without rows."""
    support: Counter = Counter()
    right: Counter = Counter()
    predicted_n: Counter = Counter()
    predicted_right: Counter = Counter()
    for g, p in pairs:
        ok = is_right(g, p)
        for label in labels_of(g):
            support[label] += 1
            right[label] += ok
        predicted_n[p] += 1
        predicted_right[p] += p in labels_of(g)
    out = {}
    for label in sorted(set(support) | set(labels)):
        precision = _ratio(predicted_right[label], predicted_n[label])
        recall = _ratio(right[label], support[label])
        f1 = _ratio(int(2 * precision * recall * 1e6), int((precision + recall) * 1e6))
        out[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support[label]}
    return out


def confusion(gold: Sequence[str], predicted: Sequence[str]) -> Tuple[List[str], List[List[int]]]:
    resolved = [resolved_gold(g, p) for g, p in zip(gold, predicted)]
    labels = sorted(set(resolved) | set(predicted))
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for g, p in zip(resolved, predicted):
        matrix[index[g]][index[p]] += 1
    return labels, matrix
