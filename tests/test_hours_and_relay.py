from datetime import datetime, timezone

from bot.handoff.hours import SupportHours, opening_in_words
from bot.handoff.queue import estimated_wait_seconds, priority_for, wait_in_words
from bot.handoff.relay import is_cancel, parse_rating

HOURS = SupportHours.from_config({
    "timezone": "Asia/Shanghai",
    "weekly": {"mon": ["09:00", "21:00"], "tue": ["09:00", "21:00"], "wed": ["09:00", "21:00"],
               "thu": ["09:00", "21:00"], "fri": ["09:00", "21:00"], "sat": ["10:00", "18:00"]},
    "holidays": ["2026-12-25"],
})


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def test_open_during_the_week_in_shanghai_time():
    assert HOURS.is_open(utc(2026, 11, 27, 2, 0))       # Fri 10:00 Shanghai
    assert not HOURS.is_open(utc(2026, 11, 27, 14, 0))  # Fri 22:00 Shanghai


def test_next_opening_after_hours_weekend_and_holiday():
    now = utc(2026, 11, 27, 14, 0)                      # Fri 22:00
    opening = HOURS.next_opening(now)
    assert (opening.day, opening.hour) == (28, 10)      # Sat 10:00
    assert opening_in_words(opening, now) == "明天 10:00"
    sunday = HOURS.next_opening(utc(2026, 11, 29, 4, 0))  # Sun noon: closed all day
    assert (sunday.day, sunday.hour) == (30, 9)
    holiday = HOURS.next_opening(utc(2026, 12, 25, 4, 0))  # Fri, a holiday
    assert (holiday.day, holiday.hour) == (26, 10)
    assert HOURS.next_opening(utc(2026, 11, 27, 2, 0)) is None


def test_priority_and_wait():
    assert [priority_for(t) for t in ("report_fraud", "account_security", "account_frozen", "refund", None)] == [0, 1, 2, 3, 3]
    assert estimated_wait_seconds(3, [60, 120], 1) == 270
    assert estimated_wait_seconds(3, [], 3) == 300
    assert wait_in_words(30) == "约 1 分钟" and wait_in_words(3900) == "约 1 小时 5 分钟"


def test_cancel_and_rating_parsing():
    phrases = ("取消转人工", "不用人工")
    assert is_cancel("取消转人工", phrases) and is_cancel("算了 不用人工了", phrases)
    assert is_cancel("取消轉人工", phrases)
    assert not is_cancel("退款进度", phrases)
    assert [parse_rating(t) for t in ("5", "4分", "五星", " 3 ", "/rate_2")] == [5, 4, 5, 3, 2]
    assert parse_rating("6") is None and parse_rating("退款") is None and parse_rating("15") is None
