"""The console's 看板: dashboard numbers, charts and the FAQ gap list over HTTP (signed-in agents).

    GET /api/dashboard?days=7                 numbers + gap groups (JSON); or ?since=…&until=…
    GET /api/dashboard/chart/<name>.png?days=7   one chart (names: bot.insights.charts.CHARTS)
    GET /api/dashboard/report.html?days=7      the same self-contained page `make report` writes

Everything is computed by bot/insights (the same code as `make report`). One computation serves the
JSON and the charts of a page load: results are kept for CACHE_SECONDS per window.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Optional, Tuple

from sanic import Sanic, response
from sanic.request import Request
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from bot.insights.charts import CHARTS, render_chart, render_charts
from bot.insights.period import EARLIEST, LATEST, PeriodError, local_zone, period
from bot.insights.report import collect, render_html, summary_cards
from bot.insights.sources import tracker_db_url

logger = logging.getLogger(__name__)
CACHE_SECONDS = 30
NO_STORE = {"Cache-Control": "no-store"}


class DashboardData:
    """collect() results per (since, until), reused for CACHE_SECONDS (and `now` rounded to it)."""

    def __init__(self, tracker_url: Callable[[], str], handoff_url: str) -> None:
        self.tracker_url, self.handoff_url = tracker_url, handoff_url
        self._cache: Dict[Tuple[str, str], Tuple[float, Dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def window(self, request: Request) -> Tuple[datetime, datetime]:
        args = request.args
        now = datetime.fromtimestamp(time.time() // CACHE_SECONDS * CACHE_SECONDS, timezone.utc)
        return period(args.get("days"), args.get("since"), args.get("until"), now=now)

    def get(self, since: datetime, until: datetime) -> Dict[str, Any]:
        key = (since.isoformat(), until.isoformat())
        with self._lock:
            hit = self._cache.get(key)
            if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
                return hit[1]
        data = collect(self.tracker_url(), self.handoff_url, since, until, local_zone())
        data["cards"] = summary_cards(data)
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if time.monotonic() - v[0] < CACHE_SECONDS}
            self._cache[key] = (time.monotonic(), data)
        return data


def _error(status: int, message: str):
    return response.json({"error": message, "status": status}, status=status)


def register_dashboard(app: Sanic, authenticated: Callable, handoff_url: str,
                       tracker_url: Optional[Callable[[], str]] = None) -> DashboardData:
    """Add the dashboard routes to the console app (behind its `authenticated` decorator)."""
    data = DashboardData(tracker_url or tracker_db_url, handoff_url)

    async def load(request: Request):
        """(data, None) or (None, error response)."""
        try:
            since, until = data.window(request)
        except PeriodError as err:  # unreadable, reversed, too long, or outside 2000–2100
            return None, _error(400, str(err))
        except OverflowError:  # a second line of defence: period() keeps dates in range
            return None, _error(400, f"时间超出范围：只能查询 {EARLIEST} 到 {LATEST} 之间")
        try:
            return await asyncio.to_thread(data.get, since, until), None
        except (SQLAlchemyError, ArgumentError):
            logger.exception("dashboard: database unreadable")
            return None, _error(503, "暂时无法读取对话记录或工单数据库，请稍后重试")

    @app.get("/api/dashboard")
    @authenticated
    async def dashboard_json(request: Request):
        result, error = await load(request)
        return error or response.json(result, headers=NO_STORE)

    @app.get("/api/dashboard/chart/<name:str>")
    @authenticated
    async def dashboard_chart(request: Request, name: str):
        chart = name[:-4] if name.endswith(".png") else name
        if chart not in CHARTS:
            return _error(404, f"没有这个图表：{name}（可用：{', '.join(CHARTS)}）")
        result, error = await load(request)
        if error:
            return error
        png = await asyncio.to_thread(render_chart, chart, result["analytics"])
        return response.raw(png, content_type="image/png", headers=NO_STORE)

    @app.get("/api/dashboard/report.html")
    @authenticated
    async def dashboard_report(request: Request):
        result, error = await load(request)
        if error:
            return error
        page = await asyncio.to_thread(lambda: render_html(result, render_charts(result["analytics"])))
        return response.html(page, headers=NO_STORE)

    return data
