"""The dashboard's charts as PNG bytes (matplotlib, Agg, no pyplot: safe in a web server).

Chinese labels need a CJK font: Debian's fonts-wqy-zenhei (or Noto CJK) is used when installed;
without one the charts still render (labels may show as boxes) and a warning is logged once.
"""
from __future__ import annotations

import io
import logging
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

logger = logging.getLogger(__name__)

CJK_FONT_FILES = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
CJK_FONT_NAMES = ("WenQuanYi", "Noto Sans CJK", "Source Han Sans", "SimHei", "Microsoft YaHei", "PingFang")
CHANNEL_TITLES = {"socketio": "App 内聊天", "rest": "REST 接口", "telegram": "Telegram", "wechat": "微信公众号",
                  "cmdline": "命令行", "unknown": "未知"}
COLORS = ["#1677ff", "#52c41a", "#faad14", "#eb2f96", "#13c2c2", "#722ed1", "#fa541c", "#8c8c8c"]
_render_lock = threading.Lock()  # matplotlib's rcParams and font cache are process-global


@lru_cache(maxsize=1)
def cjk_font() -> Optional[str]:
    """The family name of an installed CJK font, or None."""
    from matplotlib import font_manager

    for path in CJK_FONT_FILES:
        if Path(path).exists():
            try:
                font_manager.fontManager.addfont(path)
                return font_manager.FontProperties(fname=path).get_name()
            except (OSError, RuntimeError, ValueError):
                continue
    for font in font_manager.fontManager.ttflist:
        if any(name in font.name for name in CJK_FONT_NAMES):
            return font.name
    logger.warning("no CJK font found (apt-get install fonts-wqy-zenhei): chart labels may not render")
    return None


def _figure(width: float = 7.5, height: float = 3.4):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _empty(ax, text: str = "暂无数据") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=14, color="#8a919f", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _style(ax, title: str) -> None:
    ax.set_title(title, fontsize=13, loc="left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", color="#eef0f3")
    ax.set_axisbelow(True)


def _stacked(ax, labels: List[str], series: Dict[str, List[int]]) -> None:
    bottoms = [0] * len(labels)
    for i, (channel, values) in enumerate(series.items()):
        ax.bar(range(len(labels)), values, bottom=bottoms, color=COLORS[i % len(COLORS)],
               label=CHANNEL_TITLES.get(channel, channel))
        bottoms = [b + v for b, v in zip(bottoms, values)]
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def hourly(data: Dict[str, Any]):
    fig = _figure()
    ax = fig.add_subplot()
    _style(ax, "每小时新会话（按渠道，当地时间）")
    series = data.get("conversations_per_hour") or {}
    if not any(sum(v) for v in series.values()):
        _empty(ax)
        return fig
    _stacked(ax, [str(h) for h in range(24)], series)
    ax.set_xticks(range(24))
    ax.set_xticklabels([str(h) for h in range(24)], fontsize=8)
    ax.set_xlabel("时")
    return fig


def daily(data: Dict[str, Any]):
    fig = _figure()
    ax = fig.add_subplot()
    _style(ax, "每日会话（按渠道）")
    days = data.get("conversations_per_day") or {}
    channels = sorted({c for counts in days.values() for c in counts})
    if not channels:
        _empty(ax)
        return fig
    labels = list(days)
    _stacked(ax, labels, {c: [days[d].get(c, 0) for d in labels] for c in channels})
    step = max(1, len(labels) // 10)
    ax.set_xticks(range(0, len(labels), step))
    ax.set_xticklabels([labels[i][5:] for i in range(0, len(labels), step)], fontsize=8)
    return fig


def topics(data: Dict[str, Any]):
    fig = _figure()
    ax = fig.add_subplot()
    _style(ax, "热门话题（前 10）")
    top = (data.get("top_topics") or [])[:10]
    if not top:
        _empty(ax)
        return fig
    top = list(reversed(top))
    ax.barh([t["title"] for t in top], [t["count"] for t in top], color=COLORS[0])
    ax.grid(axis="x", color="#eef0f3")
    ax.tick_params(axis="y", labelsize=9)
    for i, t in enumerate(top):
        ax.text(t["count"], i, f" {t['count']}", va="center", fontsize=8)
    return fig


def outcomes(data: Dict[str, Any]):
    from bot.insights.analytics import OUTCOME_TITLES

    fig = _figure()
    ax = fig.add_subplot()
    _style(ax, "用户消息的结果")
    counts = {k: v for k, v in (data.get("outcomes") or {}).items() if v}
    if not counts:
        _empty(ax)
        return fig
    names = list(counts)
    palette = {"answered": "#52c41a", "handed_off": "#faad14", "out_of_scope": "#eb2f96", "clarified": "#13c2c2"}
    ax.bar([OUTCOME_TITLES.get(n, n) for n in names], [counts[n] for n in names],
           color=[palette.get(n, "#8c8c8c") for n in names])
    ax.tick_params(axis="x", labelsize=9)
    for i, n in enumerate(names):
        ax.text(i, counts[n], str(counts[n]), ha="center", va="bottom", fontsize=8)
    return fig


def ratings(data: Dict[str, Any]):
    fig = _figure()
    ax = fig.add_subplot()
    info = data.get("ratings") or {}
    mean = info.get("mean")
    _style(ax, "人工服务满意度" + (f"（平均 {mean} 分，{info.get('count', 0)} 个评分）" if mean else ""))
    distribution = info.get("distribution") or {}
    if not info.get("count"):
        _empty(ax)
        return fig
    scores = [str(s) for s in range(1, 6)]
    ax.bar([f"{s} 分" for s in scores], [distribution.get(s, 0) for s in scores],
           color=["#ff4d4f", "#fa8c16", "#fadb14", "#95de64", "#52c41a"])
    return fig


def duration_text(seconds: float) -> str:
    """Minutes, or hours from one hour on (for chart labels and the report's cards)."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} 小时"
    return f"{seconds / 60:.1f} 分钟"


def times(data: Dict[str, Any]):
    """Queue waiting and agent handling side by side, each on its own scale (waits can be hours)."""
    fig = _figure()
    wait, handle = data.get("queue_wait") or {}, data.get("handling_time") or {}
    if not wait.get("count") and not handle.get("count"):
        ax = fig.add_subplot()
        _style(ax, "排队等待与人工处理时长")
        _empty(ax)
        return fig
    fig.suptitle("排队等待与人工处理时长", fontsize=13, x=0.02, ha="left")
    for i, (title, d, color) in enumerate((("排队等待", wait, "#1677ff"), ("人工处理", handle, "#52c41a"))):
        ax = fig.add_subplot(1, 2, i + 1)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.set_title(f"{title}（{d.get('count', 0)} 单）", fontsize=10)
        values = [d.get("median") or 0, d.get("p90") or 0]
        hours = max(values) >= 3600
        scaled = [v / (3600 if hours else 60) for v in values]
        ax.bar(["中位数", "P90"], scaled, color=[color, "#faad14"])
        ax.set_ylabel("小时" if hours else "分钟", fontsize=9)
        for x, (v, raw) in enumerate(zip(scaled, values)):
            ax.text(x, v, duration_text(raw), ha="center", va="bottom", fontsize=8)
    return fig


CHARTS: Dict[str, Callable[[Dict[str, Any]], Any]] = {
    "hourly": hourly, "daily": daily, "topics": topics, "outcomes": outcomes, "ratings": ratings, "times": times,
}
CHART_TITLES = {"hourly": "每小时新会话", "daily": "每日会话", "topics": "热门话题", "outcomes": "消息结果",
                "ratings": "满意度", "times": "等待与处理时长"}


def render_chart(name: str, data: Dict[str, Any]) -> bytes:
    """One chart (a name of CHARTS) of `Dashboard.as_dict()` as PNG bytes."""
    if name not in CHARTS:
        raise KeyError(name)
    import matplotlib

    with _render_lock:
        font = cjk_font()
        families = [font, "DejaVu Sans"] if font else ["DejaVu Sans"]
        with matplotlib.rc_context({"font.family": families, "axes.unicode_minus": False}):
            return _png(CHARTS[name](data))


def render_charts(data: Dict[str, Any]) -> Dict[str, bytes]:
    return {name: render_chart(name, data) for name in CHARTS}
