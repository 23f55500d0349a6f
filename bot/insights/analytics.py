"""The support lead's numbers for a time window: what users ask and where the assistant fails.

`dashboard(tracker_db, handoff_db, since, until)` returns a `Dashboard` whose `as_dict()` is
plain JSON. Conversations and turns come from Rasa's tracker store (turns.py); hand-off times
and ratings from the `handoff_tickets` table. Day and hour buckets are in the support team's
local time (Asia/Shanghai by default); the window itself is [since, until) in UTC.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Sequence
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bot.db.models import Ticket
from bot.insights.sources import EngineOrUrl, handoff_engine
from bot.insights.turns import OUTCOMES, Turn, by_conversation, read_turns, utc, window
from bot.topics import FAQ_TOPICS

DEFAULT_TZ = "Asia/Shanghai"
OUTCOME_TITLES = {
    "answered": "已回答", "handed_off": "转人工", "out_of_scope": "超出范围", "clarified": "追问澄清",
    "conversation": "其他对话", "to_agent": "发给人工的消息", "relay": "评分/取消", "no_reply": "无回复",
}
REASON_TITLES = {"contact_human": "用户要求人工", "low_confidence": "小助手没把握", "out_of_scope": "超出范围",
                 "not_solved": "回答没解决", "scam_signal": "疑似诈骗"}


@dataclass
class Durations:
    """Seconds: how many, median and 90th percentile (nearest rank)."""

    count: int = 0
    median: Optional[float] = None
    p90: Optional[float] = None
    mean: Optional[float] = None

    @classmethod
    def of(cls, values: Sequence[float]) -> "Durations":
        values = sorted(v for v in values if v is not None and v >= 0)
        if not values:
            return cls()
        return cls(len(values), round(percentile(values, 50), 1), round(percentile(values, 90), 1),
                   round(sum(values) / len(values), 1))


@dataclass
class Dashboard:
    since: str
    until: str
    timezone: str
    conversations: int = 0
    user_messages: int = 0
    conversations_per_day: Dict[str, Dict[str, int]] = field(default_factory=dict)  # day → channel → n
    conversations_per_hour: Dict[str, List[int]] = field(default_factory=dict)  # channel → 24 counts
    messages_per_hour: List[int] = field(default_factory=lambda: [0] * 24)
    channels: Dict[str, int] = field(default_factory=dict)
    top_topics: List[Dict[str, Any]] = field(default_factory=list)
    outcomes: Dict[str, int] = field(default_factory=dict)
    resolution: Dict[str, Any] = field(default_factory=dict)
    ratings: Dict[str, Any] = field(default_factory=dict)
    handoffs: Dict[str, Any] = field(default_factory=dict)
    containment: Dict[str, Any] = field(default_factory=dict)
    queue_wait: Durations = field(default_factory=Durations)
    handling_time: Durations = field(default_factory=Durations)
    peak_hour: Dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of sorted values (the value at or below which p % fall)."""
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return float(ordered[rank - 1])


INTENT_TITLES = {"out_of_scope": "超出服务范围", "contact_human": "要求人工", "nlu_fallback": "未识别",
                 "greet": "问候", "goodbye": "告别", "thank": "感谢", "affirm": "肯定", "deny": "否定",
                 "bot_challenge": "问是否机器人"}


def topic_titles() -> Dict[str, str]:
    """FAQ titles for topic names (the staff's own words) and names for the other intents."""
    try:
        from bot.faq.store import shared_store

        faq_titles = {name: topic.title for name, topic in shared_store().get().topics.items()}
    except Exception:  # a broken FAQ file must not break the dashboard: names instead
        faq_titles = {}
    return {**INTENT_TITLES, **faq_titles}


def dashboard(tracker_db: EngineOrUrl, handoff_db: Optional[EngineOrUrl] = None,
              since: Optional[datetime] = None, until: Optional[datetime] = None,
              tz: str = DEFAULT_TZ, titles: Optional[Dict[str, str]] = None,
              turns: Optional[List[Turn]] = None) -> Dashboard:
    """Every number of the dashboard for [since, until) (default: the last 7 days); `turns`:
    the window's turns when the caller has read them already."""
    start, end = window(since, until)
    if turns is None:
        turns = read_turns(tracker_db, start, end)
    out = conversation_stats(turns, start, end, ZoneInfo(tz), titles if titles is not None else topic_titles())
    engine = handoff_engine(handoff_db)
    if engine is not None:
        ticket_stats(out, _tickets(engine, start, end))
    return out


def conversation_stats(turns: List[Turn], start: datetime, end: datetime, zone: ZoneInfo,
                       titles: Dict[str, str]) -> Dashboard:
    out = Dashboard(since=start.isoformat(), until=end.isoformat(), timezone=str(zone.key))
    out.user_messages = len(turns)
    per_day: Dict[str, Counter] = defaultdict(Counter)
    per_hour: Dict[str, List[int]] = defaultdict(lambda: [0] * 24)
    channels: Counter = Counter()
    for conversation in by_conversation(turns).values():
        first = conversation[0]
        local = _local(first.timestamp, zone)
        per_day[local.strftime("%Y-%m-%d")][first.channel] += 1
        per_hour[first.channel][local.hour] += 1
        channels[first.channel] += 1
    out.conversations = sum(channels.values())
    out.channels = dict(channels.most_common())
    out.conversations_per_day = {day: dict(per_day.get(day, {})) for day in _days(start, end, zone)}
    out.conversations_per_hour = dict(sorted(per_hour.items()))

    by_clock_hour: Counter = Counter()
    for turn in turns:
        local = _local(turn.timestamp, zone)
        out.messages_per_hour[local.hour] += 1
        by_clock_hour[local.strftime("%Y-%m-%d %H:00")] += 1
    if by_clock_hour:
        hour, count = min(by_clock_hour.items(), key=lambda item: (-item[1], item[0]))
        out.peak_hour = {"hour": hour, "messages": count}
    else:
        out.peak_hour = {"hour": None, "messages": 0}

    outcomes = Counter(t.outcome for t in turns)
    out.outcomes = {name: outcomes.get(name, 0) for name in OUTCOMES}
    assistant_turns = [t for t in turns if t.outcome not in ("to_agent", "relay")]
    topics = Counter(t.intent for t in assistant_turns if t.intent in FAQ_TOPICS)
    out.top_topics = [{"topic": name, "title": titles.get(name, name), "count": n}
                      for name, n in sorted(topics.items(), key=lambda item: (-item[1], item[0]))]
    out.resolution = resolution_stats(assistant_turns, titles)
    out.containment = containment_stats(turns)
    return out


def containment_stats(turns: List[Turn]) -> Dict[str, Any]:
    """Conversations that ended without a ticket and without a 否 (or 没用): the share the
    assistant resolved on its own."""
    conversations = by_conversation(turns).values()
    contained = sum(1 for c in conversations
                    if not any(t.outcome in ("handed_off", "to_agent", "relay") or t.resolved is False for t in c))
    total = len(conversations)
    return {"conversations": total, "contained": contained,
            "rate": round(contained / total, 4) if total else None}


def resolution_stats(turns: List[Turn], titles: Dict[str, str]) -> Dict[str, Any]:
    """Answers the user judged with 是/否 (or 没用): overall and per topic."""
    answered = [t for t in turns if t.outcome == "answered"]
    judged = [t for t in answered if t.resolved is not None]
    yes = sum(1 for t in judged if t.resolved)
    per_topic: Dict[str, Counter] = defaultdict(Counter)
    per_entry: Dict[str, Counter] = defaultdict(Counter)
    for t in answered:
        per_entry[t.faq_id or t.intent or "unknown"]["answers"] += 1
    for t in judged:
        per_topic[t.intent or "unknown"]["resolved" if t.resolved else "not_resolved"] += 1
        per_entry[t.faq_id or t.intent or "unknown"]["resolved" if t.resolved else "not_resolved"] += 1
    return {
        "per_entry": [{"faq_id": name, "answers": c["answers"], "resolved": c["resolved"],
                       "not_resolved": c["not_resolved"]}
                      for name, c in sorted(per_entry.items(), key=lambda item: (-item[1]["answers"], item[0]))],
        "answered": len(answered),
        "asked": len(judged),
        "resolved": yes,
        "not_resolved": len(judged) - yes,
        "rate": round(yes / len(judged), 4) if judged else None,
        "per_topic": [
            {"topic": name, "title": titles.get(name, name), "resolved": c["resolved"],
             "not_resolved": c["not_resolved"], "rate": round(c["resolved"] / (c["resolved"] + c["not_resolved"]), 4)}
            for name, c in sorted(per_topic.items(), key=lambda item: (-sum(item[1].values()), item[0]))
        ],
    }


def _tickets(engine, start: datetime, end: datetime) -> List[Dict[str, Any]]:
    table = Ticket.__table__
    naive_start, naive_end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    query = (sa.select(table.c.status, table.c.reason, table.c.channel, table.c.rating, table.c.created_at,
                       table.c.claimed_at, table.c.closed_at)
             .where(table.c.created_at >= naive_start, table.c.created_at < naive_end))
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def ticket_stats(out: Dashboard, tickets: List[Dict[str, Any]]) -> Dashboard:
    """Ratings, hand-offs by reason, queue waiting and agent handling times."""
    ratings = [t["rating"] for t in tickets if t["rating"] in (1, 2, 3, 4, 5)]
    distribution = Counter(ratings)
    out.ratings = {
        "count": len(ratings),
        "mean": round(sum(ratings) / len(ratings), 2) if ratings else None,
        "distribution": {str(score): distribution.get(score, 0) for score in range(1, 6)},
    }
    out.handoffs = {
        "tickets": len(tickets),
        "per_100_conversations": round(len(tickets) * 100 / out.conversations, 1) if out.conversations else None,
        "by_reason": dict(Counter(t["reason"] for t in tickets).most_common()),
        "by_status": dict(Counter(t["status"] for t in tickets).most_common()),
    }
    out.queue_wait = Durations.of([(t["claimed_at"] - t["created_at"]).total_seconds()
                                   for t in tickets if t["claimed_at"] and t["created_at"]])
    out.handling_time = Durations.of([(t["closed_at"] - t["claimed_at"]).total_seconds()
                                      for t in tickets if t["status"] == "closed" and t["closed_at"] and t["claimed_at"]])
    return out


def _local(timestamp: float, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(timestamp, timezone.utc).astimezone(zone)


def _days(start: datetime, end: datetime, zone: ZoneInfo) -> List[str]:
    """Every local day the window touches, so quiet days show as 0."""
    day, last = utc(start).astimezone(zone).date(), (utc(end) - timedelta(microseconds=1)).astimezone(zone).date()
    days = []
    while day <= last:
        days.append(day.isoformat())
        day += timedelta(days=1)
    return days
