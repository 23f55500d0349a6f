"""Queue order and waiting-time estimate (pure functions)."""
from __future__ import annotations

from typing import Optional, Sequence

PRIORITY_BY_TOPIC = {"report_fraud": 0, "account_security": 1, "account_frozen": 2}
DEFAULT_PRIORITY = 3
PRIORITY_LABELS = {0: "紧急（诈骗）", 1: "高（账户安全）", 2: "较高（账户冻结）", 3: "普通"}
DEFAULT_HANDLING_SECONDS = 300.0


def priority_for(topic: Optional[str]) -> int:
    """report_fraud first, then account_security, then account_frozen, then the rest."""
    return PRIORITY_BY_TOPIC.get(topic or "", DEFAULT_PRIORITY)


def estimated_wait_seconds(
    position: int, recent_handling_seconds: Sequence[float], agents_on_duty: int
) -> float:
    """Tickets ahead (and this one) × mean recent handling time ÷ agents working in parallel."""
    mean = (
        sum(recent_handling_seconds) / len(recent_handling_seconds)
        if recent_handling_seconds
        else DEFAULT_HANDLING_SECONDS
    )
    return max(1, position) * mean / max(1, agents_on_duty)


def wait_in_words(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return f"约 {minutes} 分钟"
    return f"约 {minutes // 60} 小时 {minutes % 60} 分钟" if minutes % 60 else f"约 {minutes // 60} 小时"
