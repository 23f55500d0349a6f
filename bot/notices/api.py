"""HTTP for service notices: the console's /api/notices (agents) and the widget's public list.

Console: GET /api/notices (current; ?all=1 with expired and cleared), POST /api/notices
{topic, text, until[, starts_at]}, DELETE /api/notices/<id>. They sit behind the console's
`authenticated` decorator (session + CSRF); bad input gets 400 with the Chinese reason.
Widget: GET /webhooks/socketio/notices, public and read-only: only topic, text and until.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Dict, Iterable, Optional

from sanic import Sanic, response
from sanic.request import Request

from bot.notices.timing import zone_label
from bot.notices.store import NoticeError, notice_store
from bot.topics import FAQ_TOPICS

logger = logging.getLogger(__name__)


def _optional_text(data: Dict[str, Any], key: str) -> Optional[str]:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise NoticeError(f"{key} 必须是字符串")
    return value


def topic_choices(titles: Dict[str, str]) -> list:
    return [{"name": "all", "title": "所有话题"}] + [{"name": t, "title": titles.get(t, t)} for t in FAQ_TOPICS]


def register_notice_routes(app: Sanic, authenticated: Callable, body: Callable[[Request], Dict[str, Any]],
                           titles: Callable[[], Dict[str, str]] = dict, audit: Optional[Callable] = None) -> None:
    """Add the notice API to the console app (its `authenticated` decorator and JSON `body`).
    `titles()` gives FAQ topic titles for the form; `audit(agent, action, number, detail)`."""

    def record(agent: str, action: str, detail: str) -> None:
        if audit is not None:
            audit(agent, action, None, detail[:500])

    @app.get("/api/notices")
    @authenticated
    async def notices_list(request: Request):
        store = notice_store()
        include_past = request.args.get("all") in ("1", "true", "yes")
        notices = await asyncio.to_thread(store.list, include_past)
        now = store.now()
        return response.json({"notices": [store.staff_dict(n, now) for n in notices],
                              "topics": topic_choices(titles()), "timezone": zone_label(store.tz)})

    @app.post("/api/notices")
    @authenticated
    async def notices_create(request: Request):
        data = body(request)
        agent = request.ctx.agent["name"]
        store = notice_store()
        notice = await asyncio.to_thread(
            store.set, _optional_text(data, "topic"), data.get("text"), _optional_text(data, "until"),
            _optional_text(data, "starts_at"), agent)
        await asyncio.to_thread(record, agent, "notice_set",
                                f"#{notice.id} {notice.topic or 'all'} until {notice.until:%Y-%m-%d %H:%M}Z: {notice.text}")
        return response.json({"notice": store.staff_dict(notice)}, status=201)

    @app.delete("/api/notices/<notice_id:int>")
    @authenticated
    async def notices_clear(request: Request, notice_id: int):
        agent = request.ctx.agent["name"]
        store = notice_store()
        cleared = await asyncio.to_thread(store.clear, notice_id, None, agent)
        await asyncio.to_thread(record, agent, "notice_clear", f"#{notice_id}")
        return response.json({"cleared": [store.staff_dict(n) for n in cleared]})


def _cors_headers(request: Request, allowed: Optional[Iterable[str]]) -> Dict[str, str]:
    """The widget may live on another origin: allow the ones socket.io allows (none = same origin)."""
    origin = request.headers.get("origin")
    allowed = list(allowed or [])
    if not origin or not allowed:
        return {}
    if "*" in allowed:
        return {"Access-Control-Allow-Origin": "*"}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin in allowed else {}


async def public_notices(request: Request, allowed_origins: Optional[Iterable[str]] = None):
    """Active notices for anyone (the widget's banner): topic, text, until — nothing else."""
    headers = {"Cache-Control": "no-cache", **_cors_headers(request, allowed_origins)}
    try:
        store = notice_store()
        notices = await asyncio.to_thread(store.active)
    except Exception:  # database down: the widget keeps working without a banner
        logger.exception("service notices could not be read for the widget")
        return response.json({"notices": []}, status=503, headers=headers)
    return response.json({"notices": [store.public_dict(n) for n in notices]}, headers=headers)
