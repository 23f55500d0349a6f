"""Is a retrained model at least as good as the one in service? (the gate before switching)

Numbers come from the same evaluation as `make eval` (bot/training/evaluate.py): accuracy on in-scope
rows, the wrong-answer rate (another topic's answer given), and the share of out-of-scope rows
handed off. A candidate may replace the current model only when none of the three got worse by
more than `tolerance` (default 0: not worse at all). A wrong answer costs users more than a
hand-off, which is why the wrong-answer rate is a gate of its own and not folded into accuracy.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Mapping

from bot.training.metrics import Scores

EPSILON = 1e-9
"""Float noise: 0.8430000001 is not lower than 0.843."""


@dataclass(frozen=True)
class EvalNumbers:
    rows: int
    in_scope_rows: int
    accuracy: float
    wrong_answer_rate: float
    out_of_scope_rows: int
    out_of_scope_handed_off: float

    @classmethod
    def from_scores(cls, scores: Scores) -> "EvalNumbers":
        return cls(scores.in_scope_rows + scores.out_of_scope_rows, scores.in_scope_rows, scores.accuracy,
                   scores.wrong_answer_rate, scores.out_of_scope_rows, scores.out_of_scope_handed_off)

    @classmethod
    def from_report(cls, report: Mapping[str, Any]) -> "EvalNumbers":
        """From `eval_report.json` as `bot eval` (make eval) writes it."""
        return cls(int(report["rows"]), int(report["in_scope_rows"]), float(report["accuracy"]),
                   float(report["wrong_answer_rate"]), int(report["out_of_scope_rows"]),
                   float(report["out_of_scope_handed_off"]))

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    switch: bool
    reasons: List[str] = field(default_factory=list)
    """Why the candidate was refused, one line per number that got worse (empty when switching)."""


def decide(current: EvalNumbers, candidate: EvalNumbers, tolerance: float = 0.0) -> Decision:
    """Switch only when accuracy is not lower, wrong answers not higher, out-of-scope hand-offs
    not lower (each within `tolerance`, an absolute difference of rates)."""
    if tolerance < 0:
        raise ValueError("tolerance must be >= 0")
    if (current.in_scope_rows, current.out_of_scope_rows) != (candidate.in_scope_rows, candidate.out_of_scope_rows):
        return Decision(False, [f"两个模型不是在同一份评测集上评的（{current.rows} 行 vs {candidate.rows} 行）"])
    reasons = []
    slack = tolerance + EPSILON
    if candidate.accuracy < current.accuracy - slack:
        reasons.append(f"准确率下降：{current.accuracy:.3f} → {candidate.accuracy:.3f}")
    if candidate.wrong_answer_rate > current.wrong_answer_rate + slack:
        reasons.append(f"答错率上升：{current.wrong_answer_rate:.3f} → {candidate.wrong_answer_rate:.3f}")
    if candidate.out_of_scope_handed_off < current.out_of_scope_handed_off - slack:
        reasons.append(f"超范围问题转人工比例下降：{current.out_of_scope_handed_off:.3f} → "
                       f"{candidate.out_of_scope_handed_off:.3f}")
    return Decision(not reasons, reasons)
