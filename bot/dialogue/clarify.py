"""Low confidence: ask which of two close topics the user meant, or hand off."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from bot.config import HandoffSettings
from bot.topics import FALLBACK_INTENT, FAQ_TOPICS


def ranked_topics(intent_ranking: Sequence[Mapping[str, Any]]) -> List[Tuple[str, float]]:
    """(intent, confidence) best first, without the fallback pseudo-intent."""
    ranked = [
        (str(r.get("name")), float(r.get("confidence") or 0.0))
        for r in intent_ranking or []
        if r.get("name") and r.get("name") != FALLBACK_INTENT
    ]
    return sorted(ranked, key=lambda item: -item[1])


def best_guess(latest_message: Mapping[str, Any]) -> Tuple[Optional[str], float]:
    """The intent the classifier leaned to, even when it fell below the threshold."""
    ranked = ranked_topics(latest_message.get("intent_ranking") or [])
    if ranked:
        return ranked[0]
    intent: Dict[str, Any] = latest_message.get("intent") or {}
    return intent.get("name"), float(intent.get("confidence") or 0.0)


def clarify_candidates(
    intent_ranking: Sequence[Mapping[str, Any]], settings: HandoffSettings
) -> Optional[List[str]]:
    """The two most likely FAQ topics when they are close enough to ask about, else None."""
    if not settings.clarify_enabled:
        return None
    ranked = ranked_topics(intent_ranking)[:2]
    if len(ranked) < 2 or any(name not in FAQ_TOPICS for name, _ in ranked):
        return None
    (first, p1), (second, p2) = ranked
    if p2 < settings.clarify_min_confidence or p1 - p2 > settings.clarify_max_gap:
        return None
    return [first, second]
