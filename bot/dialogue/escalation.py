"""When to hand off even though the classifier is confident: the user asked for a person
twice, or said the answers did not help twice."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

HUMAN_WORDS = ("人工", "真人", "客服人员", "工作人员", "活人")
UNHELPFUL_WORDS = ("没用", "没有用", "不管用", "没帮助", "答非所问", "不是我要的")
ANSWER_ACTIONS = ("action_answer_faq", "action_not_solved")


def _intent(event: Mapping[str, Any]) -> Optional[str]:
    return ((event.get("parse_data") or {}).get("intent") or {}).get("name")


def since_last_handoff(events: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
    """Only what happened after the last hand-off ended (or began): counts start afresh."""
    for i in range(len(events) - 1, -1, -1):
        e = events[i]
        if e.get("event") in ("resume", "pause") or (e.get("event") == "action" and e.get("name") == "action_handoff"):
            return events[i + 1:]
    return events


def count_human_requests(events: Sequence[Mapping[str, Any]]) -> int:
    events = since_last_handoff(events)
    return sum(
        1
        for e in events
        if e.get("event") == "user"
        and (_intent(e) == "contact_human" or any(w in (e.get("text") or "") for w in HUMAN_WORDS))
    )


def count_unhelpful(events: Sequence[Mapping[str, Any]]) -> int:
    """User messages saying an answer did not help: 否 right after an answer, or 没用 and the like."""
    count, last_action = 0, None
    for e in since_last_handoff(events):
        if e.get("event") == "action" and e.get("name") != "action_listen":
            last_action = e.get("name")
        elif e.get("event") == "user":
            text = e.get("text") or ""
            if (_intent(e) == "deny" and last_action in ANSWER_ACTIONS) or any(w in text for w in UNHELPFUL_WORDS):
                count += 1
    return count


def escalation_reason(events: Sequence[Mapping[str, Any]]) -> Optional[str]:
    if count_human_requests(events) >= 2:
        return "contact_human"
    if count_unhelpful(events) >= 2:
        return "not_solved"
    return None
