"""Times of service notices: typed by support staff in their local time, stored as naive UTC.

Support writes "2026-11-11 02:00" meaning Beijing time (the `support_hours.timezone` of
assistant.yml); scripts may send ISO times with an offset; in a hurry "+2h" or "+30m".
Everything shown back (CLI, console, chat) is in that same local time.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_RELATIVE = re.compile(r"^\+\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?$", re.IGNORECASE)
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
MAX_AHEAD = timedelta(days=366)
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)
"""Dates a notice time may name (as typed); beyond them datetime arithmetic would overflow
(issue 16, finding 7: 0001-01-01 or 9999-12-31 gave a 500). Same range as the dashboard's
(bot/insights/period.py)."""


class NoticeTimeError(ValueError):
    """A time support staff typed that we cannot read; the message says how to write it."""


def support_timezone() -> ZoneInfo:
    """The support team's time zone (support_hours.timezone), Asia/Shanghai by default."""
    from bot.handoff.hours import support_hours

    return zone(support_hours().timezone)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise NoticeTimeError(f"未知的时区“{name}”") from None


def zone_label(tz: ZoneInfo) -> str:
    return "北京时间" if tz.key in ("Asia/Shanghai", "Asia/Chongqing", "PRC") else tz.key


def to_utc(value: datetime, tz: ZoneInfo) -> datetime:
    """An aware time, or a naive one in `tz`, as naive UTC (how the table stores it)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def to_local(value: datetime, tz: ZoneInfo) -> datetime:
    """A stored naive-UTC time in the support team's time zone."""
    return value.replace(tzinfo=timezone.utc).astimezone(tz)


def parse_when(text: str, now: datetime, tz: ZoneInfo) -> datetime:
    """Naive UTC from '2026-11-11 02:00' (local), '02:00' (next time it is 02:00 locally),
    ISO with offset ('2026-11-10T18:00Z', '…+08:00') or relative ('+2h', '+30m', '+1d').
    `now` is naive UTC."""
    raw = (text or "").strip()
    if not raw:
        raise NoticeTimeError("请填写时间")
    relative = _RELATIVE.match(raw)
    if relative and any(relative.groups()):
        try:
            days, hours, minutes = (int(g or 0) for g in relative.groups())
            delta = timedelta(days=days, hours=hours, minutes=minutes)
        except (ValueError, OverflowError):  # more digits than int() or timedelta take
            delta = None
        if delta is None or delta > MAX_AHEAD:
            raise NoticeTimeError(f"时间“{raw[:40]}”太远了，最多一年以内")
        return now + delta
    clock = _CLOCK.match(raw)
    if clock:
        hour, minute = int(clock.group(1)), int(clock.group(2))
        if hour > 23 or minute > 59:
            raise NoticeTimeError(f"时间“{raw}”不存在")
        local_now = to_local(now, tz)
        candidate = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if candidate <= local_now:
            candidate += timedelta(days=1)
        return to_utc(candidate, tz)
    iso = raw.replace("/", "-")
    if iso.endswith(("Z", "z")):
        iso = iso[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise NoticeTimeError(
            f"无法识别的时间“{raw}”：请写成“2026-11-11 02:00”（{zone_label(tz)}）、"
            "“02:00”、带时区的 ISO 时间，或“+2h”“+30m”这样的相对时间") from None
    if not EARLIEST <= parsed.date() <= LATEST:
        raise NoticeTimeError(f"时间“{raw}”超出范围：只能是 {EARLIEST} 到 {LATEST} 之间的时间")
    return to_utc(parsed, tz)


def coerce_when(value: "datetime | str", now: datetime, tz: ZoneInfo) -> datetime:
    """What the store accepts: a datetime (naive = UTC, as in the table) or text for parse_when."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, str):
        return parse_when(value, now, tz)
    raise NoticeTimeError("时间必须是文字，例如“2026-11-11 02:00”或“+2h”")


def local_text(value: Optional[datetime], tz: ZoneInfo) -> str:
    """'2026-11-11 02:00' in the support time zone ('' for None)."""
    return f"{to_local(value, tz):%Y-%m-%d %H:%M}" if value else ""


def local_iso(value: Optional[datetime], tz: ZoneInfo) -> Optional[str]:
    """ISO 8601 with the support time zone's offset ('2026-11-11T02:00:00+08:00')."""
    return to_local(value, tz).isoformat(timespec="seconds") if value else None


def until_in_words(until: datetime, now: datetime, tz: ZoneInfo) -> str:
    """For users: '02:00' today, '明天 02:00', '后天 02:00', else '11月11日 02:00' (local time)."""
    local_until, local_now = to_local(until, tz), to_local(now, tz)
    days = (local_until.date() - local_now.date()).days
    if days == 0:
        return f"{local_until:%H:%M}"
    prefix = {1: "明天", 2: "后天"}.get(days, f"{local_until.month}月{local_until.day}日")
    return f"{prefix} {local_until:%H:%M}"
