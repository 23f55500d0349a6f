"""Service notices: support leads tell users about an outage or maintenance before they ask.

A notice (table `service_notices`, migration 0003) is for one FAQ topic or, with topic NULL,
for every topic. It is active while starts_at <= now < until and not cleared, so an expired
notice disappears by itself, without a job. All times in the table are naive UTC.

The in-process actions read notices on every FAQ answer, so reads come from a short cache of
the not-cleared, not-yet-expired notices (refreshed every few seconds of the store's clock; a
set/clear through the same store refreshes it at once). The cache is filtered by `now` on every
read, so start and expiry are exact; a notice set by another process shows up within the TTL.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker
from zoneinfo import ZoneInfo

from bot.errors import StaffError
from bot.privacy.secrets import asks_for_secret
from bot.security.scam import lookalike_links, scam_settings
from bot.db.engine import engine_for
from bot.db.models import ServiceNotice, iso, utcnow
from bot.notices.timing import (
    NoticeTimeError, coerce_when, local_iso, local_text, support_timezone, zone, zone_label,
)
from bot.topics import FAQ_TOPICS

MAX_TEXT_CHARS = 300
MAX_AUTHOR_CHARS = 64
MAX_NOTICE_ID = 2**63 - 1
CACHE_SECONDS = 5.0
ALL_TOPICS = "all"
_ALL_WORDS = ("", ALL_TOPICS, "ALL", "全部", "所有")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
When = Union[datetime, str]


class NoticeError(StaffError, ValueError):
    """Bad input or a notice that cannot be changed."""


@dataclass(frozen=True)
class Notice:
    id: int
    topic: Optional[str]  # None: every topic
    text: str
    starts_at: datetime
    until: datetime
    created_by: Optional[str]
    created_at: datetime
    cleared_at: Optional[datetime] = None
    cleared_by: Optional[str] = None

    def is_active(self, now: datetime) -> bool:
        return self.cleared_at is None and self.starts_at <= now < self.until

    def applies_to(self, topic: Optional[str]) -> bool:
        return self.topic is None or self.topic == topic

    def status(self, now: datetime) -> str:
        """active | scheduled | expired | cleared"""
        if self.cleared_at is not None:
            return "cleared"
        if self.until <= now:
            return "expired"
        return "scheduled" if self.starts_at > now else "active"


STATUS_WORDS = {"active": "生效中", "scheduled": "待生效", "expired": "已过期", "cleared": "已撤下"}


def _notice(row: ServiceNotice) -> Notice:
    return Notice(row.id, row.topic, row.text, row.starts_at, row.until, row.created_by,
                  row.created_at, row.cleared_at, row.cleared_by)


def normalize_topic(topic: Optional[str]) -> Optional[str]:
    """An FAQ topic name, or None for every topic ('all', '全部', empty or None)."""
    if topic is None:
        return None
    if not isinstance(topic, str):
        raise NoticeError("话题必须是文字")
    topic = topic.strip()
    if topic in _ALL_WORDS:
        return None
    if topic not in FAQ_TOPICS:
        raise NoticeError(f"未知话题“{topic[:40]}”：请用 all（所有话题）或 {', '.join(FAQ_TOPICS)} 之一")
    return topic


def clean_text(text: Any) -> str:
    if not isinstance(text, str):
        raise NoticeError("公告内容必须是文字")
    text = _CONTROL.sub("", text).strip()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800", a mis-decoded argument)
        raise NoticeError("公告内容里有无法处理的字符（孤立的代理字符），请重新输入") from None
    if not text:
        raise NoticeError("公告内容不能为空")
    if len(text) > MAX_TEXT_CHARS:
        raise NoticeError(f"公告内容太长（{len(text)} 字），最多 {MAX_TEXT_CHARS} 字")
    phrase = asks_for_secret(text)
    if phrase:
        raise NoticeError(f"公告不能让用户提供密码、验证码或卡号（“{phrase}”）：官方从不索要这些信息")
    lookalikes = lookalike_links(text)
    if lookalikes:
        raise NoticeError(f"公告里的链接“{lookalikes[0]}”像是仿冒官方的域名，不能发布："
                          f"请只使用官方域名（{'、'.join(scam_settings().official_domains)}）")
    return text


def clean_author(author: Any) -> Optional[str]:
    if author is None:
        return None
    if not isinstance(author, str):
        raise NoticeError("发布人必须是文字")
    return author.strip()[:MAX_AUTHOR_CHARS] or None


def notice_id_of(value: Any) -> int:
    """A notice number from the CLI or the API ('3', '#3' or 3)."""
    if isinstance(value, bool):
        raise NoticeError("公告编号必须是数字")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"#?\d{1,9}", value.strip()):
        return int(value.strip().lstrip("#"))
    raise NoticeError(f"公告编号必须是数字，例如 3（收到“{str(value)[:20]}”）")


class NoticeStore:
    """Notices in the hand-off database; `clock` returns naive UTC (tests pass their own)."""

    def __init__(self, url: str, clock: Callable[[], datetime] = utcnow,
                 tz: Union[ZoneInfo, str, None] = None, cache_seconds: float = CACHE_SECONDS) -> None:
        self._session = sessionmaker(engine_for(url), expire_on_commit=False, future=True)
        self.clock = clock
        self.tz = zone(tz) if isinstance(tz, str) else (tz or support_timezone())
        self.cache_ttl = timedelta(seconds=cache_seconds)
        self._lock = threading.Lock()
        self._generation = 0
        self._cache: Optional[Tuple[datetime, Tuple[Notice, ...]]] = None

    def now(self) -> datetime:
        return self.clock()

    def _when(self, value: When, now: datetime, what: str) -> datetime:
        try:
            return coerce_when(value, now, self.tz)
        except NoticeTimeError as err:
            raise NoticeError(f"{what}：{err}") from None

    # --- writes --------------------------------------------------------------------------

    def set(self, topic: Optional[str], text: str, until: When, starts_at: Optional[When] = None,
            author: Optional[str] = None) -> Notice:
        """Publish a notice; `until`/`starts_at` as datetime (naive = UTC) or text (local time,
        ISO with offset, '+2h'). Raises NoticeError with a message for support staff."""
        now = self.clock()
        topic = normalize_topic(topic)
        text = clean_text(text)
        author = clean_author(author)
        if until is None or (isinstance(until, str) and not until.strip()):
            raise NoticeError("请填写结束时间（预计恢复的时间），例如“2026-11-11 02:00”或“+2h”")
        end = self._when(until, now, "结束时间")
        start = now if starts_at is None or (isinstance(starts_at, str) and not starts_at.strip()) \
            else self._when(starts_at, now, "开始时间")
        label = zone_label(self.tz)
        if end <= now:
            raise NoticeError(f"结束时间 {local_text(end, self.tz)}（{label}）已经过去，请填写将来的时间")
        if end <= start:
            raise NoticeError(f"结束时间 {local_text(end, self.tz)} 必须晚于开始时间 {local_text(start, self.tz)}（{label}）")
        with self._session.begin() as s:
            row = ServiceNotice(topic=topic, text=text, starts_at=start, until=end, created_by=author,
                                created_at=now)
            s.add(row)
            s.flush()
            notice = _notice(row)
        self.invalidate()
        return notice

    def clear(self, notice_id: Any = None, topic: Optional[str] = None,
              author: Optional[str] = None) -> List[Notice]:
        """Take notices down now. By number; else every current notice of `topic` ('all' = the
        notices for every topic); with neither, every current (active or scheduled) notice."""
        now = self.clock()
        author = clean_author(author)
        wanted = normalize_topic(topic) if topic is not None else None
        with self._session.begin() as s:
            if notice_id is not None:
                number = notice_id_of(notice_id)
                if not 1 <= number <= MAX_NOTICE_ID:  # beyond what the database can look up
                    raise NoticeError(f"没有编号为 {str(number)[:20]} 的公告", 404)
                row = s.get(ServiceNotice, number)
                if row is None:
                    raise NoticeError(f"没有编号为 {number} 的公告", 404)
                if topic is not None and row.topic != wanted:
                    raise NoticeError(f"公告 #{number} 不是话题“{topic}”的公告")
                if row.cleared_at is not None:
                    raise NoticeError(f"公告 #{number} 已于 {local_text(row.cleared_at, self.tz)} 撤下", 409)
                if row.until <= now:
                    raise NoticeError(f"公告 #{number} 已于 {local_text(row.until, self.tz)} 到期，无需撤下", 409)
                rows = [row]
            else:
                query = select(ServiceNotice).where(ServiceNotice.cleared_at.is_(None), ServiceNotice.until > now)
                if topic is not None:
                    query = query.where(ServiceNotice.topic == wanted if wanted else ServiceNotice.topic.is_(None))
                rows = list(s.execute(query.order_by(ServiceNotice.id)).scalars())
            for row in rows:
                row.cleared_at, row.cleared_by = now, author
            cleared = [_notice(r) for r in rows]
        self.invalidate()
        return cleared

    # --- reads ---------------------------------------------------------------------------

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._cache = None

    def _current(self, now: datetime) -> Tuple[Notice, ...]:
        """Not cleared, not yet expired (as of the last load): at most one query per TTL."""
        with self._lock:
            cached, generation = self._cache, self._generation
        if cached is not None and cached[0] <= now < cached[0] + self.cache_ttl:
            return cached[1]
        with self._session() as s:
            rows = s.execute(select(ServiceNotice)
                             .where(ServiceNotice.cleared_at.is_(None), ServiceNotice.until > now)
                             .order_by(ServiceNotice.starts_at, ServiceNotice.id)).scalars().all()
            notices = tuple(_notice(r) for r in rows)
        with self._lock:
            if generation == self._generation:  # no set/clear meanwhile: safe to keep
                self._cache = (now, notices)
        return notices

    def active(self, now: Optional[datetime] = None) -> List[Notice]:
        now = now or self.clock()
        return [n for n in self._current(now) if n.is_active(now)]

    def for_topic(self, topic: Optional[str], now: Optional[datetime] = None) -> List[Notice]:
        """Active notices for `topic`, including the ones for every topic."""
        return [n for n in self.active(now) if n.applies_to(topic)]

    def list(self, include_past: bool = False, limit: int = 200) -> List[Notice]:
        """For staff, straight from the database: current (active and scheduled) notices by
        start time; with include_past also expired and cleared ones, newest first."""
        now = self.clock()
        with self._session() as s:
            query = select(ServiceNotice)
            if include_past:
                query = query.order_by(ServiceNotice.id.desc())
            else:
                query = (query.where(ServiceNotice.cleared_at.is_(None), ServiceNotice.until > now)
                         .order_by(ServiceNotice.starts_at, ServiceNotice.id))
            return [_notice(r) for r in s.execute(query.limit(limit)).scalars()]

    # --- shapes for the console and the widget ---------------------------------------------

    def staff_dict(self, notice: Notice, now: Optional[datetime] = None) -> Dict[str, Any]:
        """Everything about a notice, times in UTC and in the support team's local time."""
        now = now or self.clock()
        status = notice.status(now)
        return {
            "id": notice.id, "topic": notice.topic or ALL_TOPICS, "text": notice.text,
            "status": status, "status_text": STATUS_WORDS[status],
            "starts_at": iso(notice.starts_at), "until": iso(notice.until),
            "starts_at_local": local_text(notice.starts_at, self.tz),
            "until_local": local_text(notice.until, self.tz),
            "created_by": notice.created_by, "created_at": iso(notice.created_at),
            "cleared_at": iso(notice.cleared_at), "cleared_by": notice.cleared_by,
        }

    def public_dict(self, notice: Notice) -> Dict[str, Any]:
        """What anyone on the internet may see: topic, text and until (local ISO time)."""
        return {"topic": notice.topic, "text": notice.text, "until": local_iso(notice.until, self.tz)}


@lru_cache(maxsize=4)
def _store_for(url: str) -> NoticeStore:
    return NoticeStore(url)


def notice_store(url: Optional[str] = None) -> NoticeStore:
    """One store (and cache) per database URL per process; the URL from the settings by default."""
    if url is None:
        from bot.config import handoff_settings

        url = handoff_settings().database_url
    return _store_for(url)
