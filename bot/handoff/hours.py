"""Support hours: a weekly schedule with holidays, in the support team's time zone."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Dict, Mapping, Optional, Tuple
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class SupportHours:
    timezone: str = "Asia/Shanghai"
    weekly: Mapping[str, Tuple[time, time]] = field(default_factory=dict)
    holidays: Tuple[date, ...] = ()

    @classmethod
    def from_config(cls, raw: Optional[Mapping]) -> "SupportHours":
        raw = raw or {}
        weekly: Dict[str, Tuple[time, time]] = {}
        for day, span in (raw.get("weekly") or {}).items():
            if day not in DAYS:
                raise ValueError(f"support_hours.weekly: unknown day '{day}' (use {DAYS})")
            if span:
                start, end = (time.fromisoformat(str(t)) for t in span)
                weekly[day] = (start, end)
        holidays = tuple(date.fromisoformat(str(d)) for d in raw.get("holidays") or [])
        return cls(timezone=raw.get("timezone", "Asia/Shanghai"), weekly=weekly, holidays=holidays)

    def _span(self, day: date) -> Optional[Tuple[time, time]]:
        if day in self.holidays:
            return None
        return self.weekly.get(DAYS[day.weekday()])

    def local(self, now: datetime) -> datetime:
        return now.astimezone(ZoneInfo(self.timezone))

    def is_open(self, now: datetime) -> bool:
        local = self.local(now)
        span = self._span(local.date())
        return bool(span) and span[0] <= local.time() < span[1]

    def next_opening(self, now: datetime) -> Optional[datetime]:
        """When people are next at work (local time), or None if open now / never."""
        if self.is_open(now):
            return None
        local = self.local(now)
        for offset in range(0, 32):
            day = local.date() + timedelta(days=offset)
            span = self._span(day)
            if not span:
                continue
            opening = datetime.combine(day, span[0], tzinfo=local.tzinfo)
            if opening > local:
                return opening
        return None


def opening_in_words(opening: datetime, now: datetime) -> str:
    """'今天 09:00', '明天 09:00' or '12月1日 09:00' in the opening's time zone."""
    local_now = now.astimezone(opening.tzinfo)
    days = (opening.date() - local_now.date()).days
    prefix = {0: "今天", 1: "明天", 2: "后天"}.get(days, f"{opening.month}月{opening.day}日")
    return f"{prefix} {opening:%H:%M}"


def support_hours() -> SupportHours:
    """The support team's hours from `support_hours:` in assistant.yml."""
    from bot.config import settings

    return SupportHours.from_config(settings().support_hours)
