"""`bot status …`: publish, list and clear service notices from the command line.

    bot status set --topic payment_failure --until "2026-11-11 02:00" "支付通道维护中，部分银行卡暂时无法付款"
    bot status list [--all]
    bot status clear [ID] [--topic T]

Times are the support team's local time (support_hours.timezone). Exit 0 when done, 2 with
the reason on stderr when the input is wrong.
"""
from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING, Optional, TextIO

if TYPE_CHECKING:  # the database modules load only when a `status` command runs
    from bot.notices.store import Notice, NoticeStore

BAD_INPUT = 2


def add_status_parser(sub: "argparse._SubParsersAction") -> None:
    """Add `status` and its sub-commands to the `bot` parser."""
    status = sub.add_parser("status", help="service notices shown to users before the answer (incidents, maintenance)")
    commands = status.add_subparsers(dest="status_command", required=True)
    set_ = commands.add_parser("set", help="publish a notice")
    set_.add_argument("text", nargs="+", help="the notice users read (max 300 characters)")
    set_.add_argument("--topic", default="all", help="an FAQ topic, or all (default) for every topic")
    set_.add_argument("--until", required=True,
                      help='expected end, local time: "2026-11-11 02:00", "02:00", ISO with offset, "+2h", "+30m"')
    set_.add_argument("--starts", default=None, help="start (same formats; default: now)")
    set_.add_argument("--by", default=None, help="author (default: your login name)")
    list_ = commands.add_parser("list", help="current notices (active and scheduled)")
    list_.add_argument("--all", dest="include_past", action="store_true", help="also expired and cleared ones")
    clear = commands.add_parser("clear", help="take notices down now (no ID and no --topic: every current one)")
    clear.add_argument("id", nargs="?", default=None, help="the notice's number (see `bot status list`)")
    clear.add_argument("--topic", default=None, help="every current notice of this topic (all = the ones for every topic)")
    clear.add_argument("--by", default=None, help="who clears it (default: your login name)")


def _login_name() -> Optional[str]:
    try:
        return getpass.getuser()
    except Exception:  # no user entry in a container: the notice simply has no author
        return None


def describe(notice: "Notice", store: "NoticeStore") -> str:
    from bot.notices.timing import local_text
    from bot.notices.store import STATUS_WORDS

    now = store.now()
    topic = notice.topic or "所有话题"
    span = f"{local_text(notice.starts_at, store.tz)} → {local_text(notice.until, store.tz)}"
    who = f"  by {notice.created_by}" if notice.created_by else ""
    cleared = f"（{notice.cleared_by or ''} {local_text(notice.cleared_at, store.tz)} 撤下）" if notice.cleared_at else ""
    return f"#{notice.id}  [{STATUS_WORDS[notice.status(now)]}]  {topic}  {span}{who}{cleared}\n    {notice.text}"


def status_command(args: argparse.Namespace, store: Optional["NoticeStore"] = None,
                   out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    from bot.notices.timing import local_text, zone_label
    from bot.notices.store import NoticeError, notice_store

    out, err = out or sys.stdout, err or sys.stderr
    try:
        store = store or notice_store()
        label = zone_label(store.tz)
        if args.status_command == "set":
            notice = store.set(args.topic, " ".join(args.text), args.until, args.starts, args.by or _login_name())
            print(f"已发布公告 #{notice.id}（{notice.topic or '所有话题'}），"
                  f"{local_text(notice.starts_at, store.tz)} 至 {local_text(notice.until, store.tz)}（{label}）", file=out)
        elif args.status_command == "list":
            notices = store.list(include_past=args.include_past)
            if not notices:
                print("没有公告" if args.include_past else "当前没有生效或待生效的公告", file=out)
            else:
                print(f"（时间为{label}）", file=out)
            for notice in notices:
                print(describe(notice, store), file=out)
        else:
            cleared = store.clear(args.id, args.topic, args.by or _login_name())
            if not cleared:
                print("没有需要撤下的公告", file=out)
            for notice in cleared:
                print(f"已撤下公告 #{notice.id}（{notice.topic or '所有话题'}）：{notice.text}", file=out)
    except NoticeError as error:
        print(f"错误：{error.message}", file=err)
        return BAD_INPUT
    return 0
