"""`make report`: the support lead's dashboard as one self-contained HTML file.

    .venv/bin/python -m bot report [--days 7 | --since 2026-11-20 [--until …]]
        [--tracker-db URL] [--handoff-db URL] [--out reports/dashboard]

Reads the project's tracker store (endpoints.yml, or WALLET_TRACKER_DB_URL) and hand-off database
(assistant.yml, or WALLET_DB_URL) and writes `index.html` (charts embedded as base64 PNG),
the charts as PNG files and `dashboard.json` (numbers and gap list) into the output directory.
The console's 看板 uses the same functions (`collect`, `render_html`, charts.render_chart).
"""
from __future__ import annotations

import argparse
import base64
import html
import json
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional
from zoneinfo import ZoneInfo

from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from bot.insights.analytics import OUTCOME_TITLES, REASON_TITLES, dashboard, topic_titles
from bot.insights.charts import CHART_TITLES, CHARTS, duration_text, render_charts
from bot.insights.gaps import REASON_TITLES as GAP_REASON_TITLES
from bot.insights.gaps import gap_questions, group_questions
from bot.insights.turns import read_turns, window
from bot.insights.period import PeriodError, local_zone, period
from bot.insights.sources import EngineOrUrl, handoff_db_url, tracker_db_url
from bot.config import ROOT

DEFAULT_OUT = ROOT / "reports" / "dashboard"
MAX_GAPS = 50


def collect(tracker_db: EngineOrUrl, handoff_db: Optional[EngineOrUrl], since: datetime, until: datetime,
            tz: Optional[ZoneInfo] = None, max_gaps: int = MAX_GAPS) -> Dict[str, Any]:
    """Numbers and gap groups of the window, as JSON-ready data."""
    tz = tz or local_zone()
    titles = topic_titles()
    start, end = window(since, until)
    turns = read_turns(tracker_db, start, end)  # once, for the numbers and the gap list
    numbers = dashboard(tracker_db, handoff_db, start, end, tz=tz.key, titles=titles, turns=turns).as_dict()
    groups = group_questions(gap_questions(turns))
    gaps = [{**g.as_dict(), "topic_title": titles.get(g.topic, g.topic) if g.topic else ""} for g in groups[:max_gaps]]
    return {"analytics": numbers, "gaps": gaps, "gap_groups": len(groups),
            "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _pct(part: int, whole: int) -> str:
    return f"{part / whole * 100:.1f}%" if whole else "—"


def _minutes(seconds: Optional[float]) -> str:
    return "—" if seconds is None else duration_text(seconds)


def summary_cards(data: Dict[str, Any]) -> List[Dict[str, str]]:
    """The headline numbers (label, value, hint), shared by the HTML report and the console."""
    a = data["analytics"]
    outcomes = a["outcomes"]
    # what users asked the assistant (not greetings, 是/否 replies or messages to a person)
    asked = sum(outcomes.get(k, 0) for k in ("answered", "handed_off", "out_of_scope", "clarified"))
    res, ratings, peak = a["resolution"], a.get("ratings") or {}, a["peak_hour"]
    wait, handle = a["queue_wait"], a["handling_time"]
    return [
        {"id": "conversations", "label": "会话数", "value": str(a["conversations"]),
         "hint": f"用户消息 {a['user_messages']} 条"},
        {"id": "answered", "label": "已回答", "value": _pct(outcomes.get("answered", 0), asked),
         "hint": f"{outcomes.get('answered', 0)} / {asked} 个提问"},
        {"id": "handed_off", "label": "转人工", "value": _pct(outcomes.get("handed_off", 0), asked),
         "hint": f"{outcomes.get('handed_off', 0)} 个提问；另有超出范围 {_pct(outcomes.get('out_of_scope', 0), asked)}"},
        {"id": "containment", "label": "自助解决率",
         "value": "—" if not (a.get("containment") or {}).get("rate") else f"{a['containment']['rate'] * 100:.1f}%",
         "hint": f"未转人工且未点“否”的会话 {(a.get('containment') or {}).get('contained', 0)} / {a['conversations']}；"
                 f"每百会话工单 {(a.get('handoffs') or {}).get('per_100_conversations') or 0}"},
        {"id": "resolution", "label": "解决率", "value": "—" if res["rate"] is None else f"{res['rate'] * 100:.1f}%",
         "hint": f"{res['resolved']} 个“是” / {res['asked']} 次作答"},
        {"id": "rating", "label": "满意度", "value": "—" if not ratings.get("mean") else f"{ratings['mean']} 分",
         "hint": f"{ratings.get('count', 0)} 个评分（1–5）"},
        {"id": "wait", "label": "排队等待", "value": _minutes(wait.get("median")),
         "hint": f"中位数；P90 {_minutes(wait.get('p90'))}"},
        {"id": "handling", "label": "人工处理", "value": _minutes(handle.get("median")),
         "hint": f"中位数；P90 {_minutes(handle.get('p90'))}"},
        {"id": "peak", "label": "高峰小时", "value": f"{peak.get('messages', 0)} 条",
         "hint": peak.get("hour") or "—"},
    ]


def _local_text(iso: str, tz: ZoneInfo) -> str:
    return datetime.fromisoformat(iso).astimezone(tz).strftime("%Y-%m-%d %H:%M")


def render_html(data: Dict[str, Any], charts: Dict[str, bytes]) -> str:
    """A self-contained page: charts embedded as data: URLs, no scripts, no external files."""
    e = html.escape
    a = data["analytics"]
    tz = ZoneInfo(a["timezone"])
    cards = "".join(
        f'<div class="card" id="card-{e(c["id"])}"><div class="label">{e(c["label"])}</div>'
        f'<div class="value">{e(c["value"])}</div><div class="hint">{e(c["hint"])}</div></div>'
        for c in summary_cards(data))
    images = "".join(
        f'<figure><img alt="{e(CHART_TITLES[name])}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"</figure>" for name, png in charts.items())
    topic_rows = "".join(
        f"<tr><td>{e(t['title'])}</td><td>{t['count']}</td>{_resolution_cells(a, t['topic'])}</tr>"
        for t in a["top_topics"]) or '<tr><td colspan="4" class="muted">暂无</td></tr>'
    outcome_rows = "".join(f"<tr><td>{e(OUTCOME_TITLES.get(k, k))}</td><td>{v}</td></tr>" for k, v in a["outcomes"].items())
    handoffs = a.get("handoffs") or {}
    reason_rows = "".join(f"<tr><td>{e(REASON_TITLES.get(k, k))}</td><td>{v}</td></tr>"
                          for k, v in (handoffs.get("by_reason") or {}).items()) or '<tr><td colspan="2" class="muted">暂无</td></tr>'
    gap_rows = "".join(_gap_row(i, g) for i, g in enumerate(data["gaps"], 1)) or \
        '<tr><td colspan="5" class="muted">这段时间没有未解答的问题</td></tr>'
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>钱包小助手 · 服务看板</title>
<style>{REPORT_CSS}</style></head>
<body>
<header><h1>钱包小助手 · 服务看板</h1>
<p>{e(_local_text(a['since'], tz))} — {e(_local_text(a['until'], tz))}（{e(a['timezone'])}）· 生成于 {e(_local_text(data['generated_at'], tz))}</p></header>
<main>
<section class="cards">{cards}</section>
<section class="charts">{images}</section>
<section class="tables">
<div><h2>话题与解决率</h2><table><thead><tr><th>话题</th><th>提问</th><th>是/否</th><th>解决率</th></tr></thead><tbody>{topic_rows}</tbody></table></div>
<div><h2>消息结果</h2><table><tbody>{outcome_rows}</tbody></table>
<h2>转人工原因（工单 {handoffs.get('tickets', 0)} 个）</h2><table><tbody>{reason_rows}</tbody></table></div>
</section>
<section><h2>FAQ 缺口：没答上或没帮上的问题（{data['gap_groups']} 组）</h2>
<table class="gaps"><thead><tr><th>#</th><th>次数</th><th>例句（同类问法）</th><th>小助手猜的话题</th><th>原因</th></tr></thead>
<tbody>{gap_rows}</tbody></table></section>
</main></body></html>
"""


def _resolution_cells(a: Dict[str, Any], topic: str) -> str:
    row = next((r for r in a["resolution"]["per_topic"] if r["topic"] == topic), None)
    if row is None:
        return "<td>—</td><td>—</td>"
    return f"<td>{row['resolved']} / {row['not_resolved']}</td><td>{row['rate'] * 100:.0f}%</td>"


def _gap_row(i: int, g: Dict[str, Any]) -> str:
    e = html.escape
    others = [t for t in g["texts"] if t != g["example"]]
    more = (f"<details><summary>另有 {len(others)} 种问法</summary><ul>"
            + "".join(f"<li>{e(t)}</li>" for t in others) + "</ul></details>") if others else ""
    reasons = "，".join(f"{e(GAP_REASON_TITLES.get(k, k))} {v}" for k, v in g["reasons"].items())
    return (f'<tr><td>{i}</td><td>{g["count"]}</td><td>{e(g["example"])}{more}</td>'
            f'<td>{e(g.get("topic_title") or "—")}</td><td>{reasons}</td></tr>')


REPORT_CSS = """
body{margin:0;font-family:"PingFang SC","Noto Sans CJK SC","WenQuanYi Zen Hei",sans-serif;background:#f5f7fa;color:#1f2329}
header{background:#1677ff;color:#fff;padding:12px 24px}header h1{margin:0;font-size:20px}header p{margin:4px 0 0;font-size:13px}
main{padding:16px 24px;display:grid;gap:16px}h2{font-size:16px;margin:8px 0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:12px}
.card{background:#fff;border-radius:8px;padding:12px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.label{font-size:13px;color:#8a919f}.value{font-size:24px;font-weight:bold;margin:4px 0}.hint{font-size:12px;color:#8a919f}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:12px}
figure{margin:0;background:#fff;border-radius:8px;padding:8px;box-shadow:0 1px 3px rgba(0,0,0,.08)}figure img{width:100%;height:auto}
.tables{display:grid;grid-template-columns:2fr 1fr;gap:16px}
table{width:100%;border-collapse:collapse;background:#fff;font-size:14px}th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #eef0f3;vertical-align:top}
.muted{color:#8a919f}details summary{cursor:pointer;color:#1677ff;font-size:12px}details ul{margin:4px 0;padding-left:18px;font-size:13px}
@media(max-width:800px){.tables{grid-template-columns:1fr}.charts{grid-template-columns:1fr}}
"""


def write_report(data: Dict[str, Any], out: Path) -> Path:
    """index.html, the PNGs and dashboard.json into `out`; returns the HTML path."""
    out.mkdir(parents=True, exist_ok=True)
    charts = render_charts(data["analytics"])
    for name, png in charts.items():
        (out / f"{name}.png").write_bytes(png)
    (out / "dashboard.json").write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    page = out / "index.html"
    page.write_text(render_html(data, charts), encoding="utf-8")
    return page


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot report", description="钱包小助手 服务看板（HTML 报告）")
    parser.add_argument("--days", type=int, default=None, help="the last N days (default 7)")
    parser.add_argument("--since", help="start, local time: 2026-11-20 or '2026-11-20 08:00'")
    parser.add_argument("--until", help="end, local time (default now)")
    parser.add_argument("--tracker-db", default=None, help="tracker store URL (default: endpoints.yml)")
    parser.add_argument("--handoff-db", default=None, help="hand-off database URL (default: assistant.yml)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output directory (default reports/dashboard)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        since, until = period(args.days, args.since, args.until)
    except PeriodError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    tracker, handoff = args.tracker_db or tracker_db_url(), args.handoff_db or handoff_db_url()
    try:
        data = collect(tracker, handoff, since, until)
    except (SQLAlchemyError, ArgumentError) as err:
        print(f"error: cannot read the databases (tracker store {_safe(tracker)}, hand-off {_safe(handoff)}): "
              f"{str(err).splitlines()[0]}", file=sys.stderr)
        return 1
    page = write_report(data, Path(args.out))
    a = data["analytics"]
    print(f"dashboard: {page} ({a['conversations']} conversations, {a['user_messages']} messages, "
          f"{data['gap_groups']} gap groups; charts: {', '.join(f'{n}.png' for n in CHARTS)})")
    if not a["conversations"]:
        print(f"no conversations in this window (tracker store: {_safe(tracker)})")
    return 0


def _safe(url: str) -> str:
    """A URL for messages, without its password."""
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unreadable URL)"

