"""The dashboard's time window, as support leads type it (local time of the support team).

"--days 7" (the default), or "--since 2026-11-20 [--until 2026-11-27]": a date means local
midnight, "2026-11-20 08:00" is local time, an ISO time with an offset is taken as written.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Optional, Tuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_DAYS = 7
MAX_DAYS = 366
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)
"""The dates a window may name (as typed). Beyond them the time-zone arithmetic overflows:
`?since=0001-01-01&until=9999-12-31` was a 500 (OverflowError; issue 16, finding 7)."""


class PeriodError(ValueError):
    """A window the dashboard cannot use; the message says why, in Chinese."""


def local_zone() -> ZoneInfo:
    """The support team's time zone (assistant.yml support_hours), Asia/Shanghai by default."""
    try:
        from bot.handoff.hours import support_hours

        return ZoneInfo(support_hours().timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("Asia/Shanghai")


def parse_local(text: str, tz: ZoneInfo) -> datetime:
    """Aware UTC from '2026-11-20', '2026-11-20 08:00' (local) or ISO with an offset."""
    raw = (text or "").strip().replace("/", "-")
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise PeriodError(f"无法识别的时间“{text[:40]}”：请写成“2026-11-20”或“2026-11-20 08:00”") from None
    if not EARLIEST <= value.date() <= LATEST:
        raise PeriodError(f"时间“{text[:40]}”超出范围：只能查询 {EARLIEST} 到 {LATEST} 之间")
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(timezone.utc)


def period(days: Optional[object] = None, since: Optional[str] = None, until: Optional[str] = None,
           tz: Optional[ZoneInfo] = None, now: Optional[datetime] = None) -> Tuple[datetime, datetime]:
    """(since, until) as aware UTC datetimes."""
    tz = tz or local_zone()
    end = parse_local(until, tz) if until else (now or datetime.now(timezone.utc))
    if since:
        start = parse_local(since, tz)
    else:
        try:
            count = int(days) if days not in (None, "") else DEFAULT_DAYS
        except (TypeError, ValueError):
            raise PeriodError("days 必须是整数（天数）") from None
        if not 1 <= count <= MAX_DAYS:
            raise PeriodError(f"days 必须在 1 到 {MAX_DAYS} 之间")
        start = end - timedelta(days=count)
    if start >= end:
        raise PeriodError("开始时间必须早于结束时间")
    if end - start > timedelta(days=MAX_DAYS):
        raise PeriodError(f"时间范围最长 {MAX_DAYS} 天")
    return start, end
