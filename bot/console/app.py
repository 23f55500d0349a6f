"""The agent console web app (Sanic): sign-in, live queue (server-sent events), tickets.

Every /api route but /api/login needs a valid session: the HttpOnly cookie set at sign-in, or
`Authorization: Bearer <token>`. No session → 401; a ticket owned by another agent → 403.
Sign-in is throttled per name and per address (429). Changes made with the cookie need the
CSRF token returned by /api/login and /api/me (header X-CSRF-Token) and a same-origin Origin;
the cookie is HttpOnly, SameSite=Strict, and Secure when the console is reached over HTTPS.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from functools import wraps
from pathlib import Path
from typing import Any, Dict, List, Optional
from urllib.parse import urlparse

from sanic import Sanic, response
from sanic.request import Request

from bot.console.rasa_client import RasaClient
from bot.console.service import ConsoleService
from bot.faq.store import shared_store
from bot.handoff.agents import agent_store
from bot.db.models import utcnow
from bot.errors import StaffError
from bot.handoff.store import TicketError, ticket_store
from bot.security.clients import client_address
from bot.security.login_throttle import LoginThrottle
from bot.security.tokens import derived_key
from bot.config import handoff_settings, settings

logger = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "wallet_console"


def _token(request: Request) -> Optional[str]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE)


def _error(status: int, message: str, headers: Optional[Dict[str, str]] = None):
    return response.json({"error": message, "status": status}, status=status, headers=headers)


def csrf_token(session_token: str) -> str:
    """Bound to the session: a page of another site can neither read nor guess it."""
    return hmac.new(derived_key("console-csrf"), session_token.encode(), hashlib.sha256).hexdigest()[:40]


def _csrf_ok(request: Request) -> bool:
    if request.method in ("GET", "HEAD", "OPTIONS") or request.headers.get("authorization"):
        return True  # reads, and API clients with a bearer token (browsers never add one by themselves)
    origin = request.headers.get("origin")
    if origin and urlparse(origin).netloc != request.host:
        return False
    cookie = request.cookies.get(COOKIE) or ""
    sent = request.headers.get("x-csrf-token") or ""
    return bool(cookie) and hmac.compare_digest(sent, csrf_token(cookie))


def _https(request: Request) -> bool:
    return request.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


def create_app(name: str = "wallet_console") -> Sanic:
    settings = handoff_settings()
    store = ticket_store(settings.database_url)
    agents = agent_store(settings.database_url)
    faq_store = shared_store()
    rasa = RasaClient(settings.rasa_url)
    app = Sanic(name)
    app.config.REQUEST_MAX_SIZE = 64 * 1024
    throttle = LoginThrottle()
    app.config.KEEP_ALIVE_TIMEOUT = 30

    def service() -> ConsoleService:
        return ConsoleService(store, faq_store.get(), rasa)

    def authenticated(handler):
        @wraps(handler)
        async def wrapper(request: Request, *args, **kwargs):
            agent = await asyncio.to_thread(agents.session_agent, _token(request))
            if agent is None:
                return _error(401, "请先登录")
            if not _csrf_ok(request):
                return _error(403, "安全校验失败（CSRF），请刷新页面后重试")
            request.ctx.agent = agent
            try:
                return await handler(request, *args, **kwargs)
            except StaffError as err:  # tickets, notices, FAQ changes, retraining
                return _error(err.status, err.message)
        return wrapper

    def body(request: Request) -> Dict[str, Any]:
        try:
            data = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise TicketError("请求体不是有效的 JSON", 400) from None
        if not isinstance(data, dict):
            raise TicketError("请求体必须是 JSON 对象", 400)
        return data

    @app.get("/")
    async def index(_: Request):
        return await response.file(STATIC / "index.html", mime_type="text/html; charset=utf-8")

    @app.get("/static/<name:str>")
    async def static(_: Request, name: str):
        files = {"console.js": "application/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}
        files["notices.js"] = "application/javascript; charset=utf-8"  # 服务公告 panel
        files["faq_loop.js"] = "application/javascript; charset=utf-8"  # FAQ 改进 panel
        files["dashboard.js"] = "application/javascript; charset=utf-8"  # 看板 tab
        files["dashboard.css"] = "text/css; charset=utf-8"
        if name not in files:
            return _error(404, "not found")
        return await response.file(STATIC / name, mime_type=files[name])

    @app.get("/health")
    async def health(_: Request):
        return response.json({"status": "ok"})

    @app.post("/api/login")
    async def login(request: Request):
        try:
            data = body(request)
        except TicketError as err:
            return _error(err.status, err.message)
        name, password = data.get("name"), data.get("password")
        if not isinstance(name, str) or not isinstance(password, str) or len(name) > 64 or len(password) > 256:
            return _error(400, "请输入用户名和密码")
        address = client_address(request.ip, request.headers.get("x-forwarded-for"))
        keys = (f"name:{name}",) + ((f"addr:{address}",) if address else ())  # local tools: per name only
        wait = throttle.blocked_for(keys)
        if wait:
            minutes = max(1, int(wait // 60) + 1)
            await asyncio.to_thread(store.audit, name[:64], "login_throttled")
            return _error(429, f"登录失败次数过多，请 {minutes} 分钟后再试", {"Retry-After": str(int(wait) + 1)})
        agent = await asyncio.to_thread(agents.verify, name, password)
        if agent is None:
            throttle.failed(keys)
            await asyncio.to_thread(store.audit, name[:64], "login_failed")
            return _error(401, "用户名或密码错误")
        throttle.succeeded(keys[0])
        token = await asyncio.to_thread(agents.start_session, agent["id"], settings.session_ttl_seconds)
        await asyncio.to_thread(store.audit, agent["name"], "login")
        resp = response.json({"agent": agent, "token": token, "csrf": csrf_token(token)})
        resp.cookies[COOKIE] = token
        resp.cookies[COOKIE]["secure"] = _https(request)
        resp.cookies[COOKIE]["httponly"] = True
        resp.cookies[COOKIE]["samesite"] = "Strict"
        resp.cookies[COOKIE]["max-age"] = settings.session_ttl_seconds
        resp.cookies[COOKIE]["path"] = "/"
        return resp

    @app.post("/api/logout")
    @authenticated
    async def logout(request: Request):
        await asyncio.to_thread(agents.end_session, _token(request))
        resp = response.json({"ok": True})
        del resp.cookies[COOKIE]
        return resp

    @app.get("/api/me")
    @authenticated
    async def me(request: Request):
        return response.json({"agent": request.ctx.agent, "csrf": csrf_token(_token(request) or "")})

    @app.get("/api/agents")
    @authenticated
    async def list_agents(_: Request):
        return response.json({"agents": await asyncio.to_thread(agents.list)})

    @app.get("/api/queue")
    @authenticated
    async def queue(_: Request):
        return response.json({"tickets": await asyncio.to_thread(service().queue, utcnow())})

    @app.get("/api/tickets/<number:str>")
    @authenticated
    async def ticket(_: Request, number: str):
        return response.json(await asyncio.to_thread(service().ticket, number))

    @app.post("/api/tickets/<number:str>/claim")
    @authenticated
    async def claim(request: Request, number: str):
        agent = request.ctx.agent
        ticket = await asyncio.to_thread(store.claim, number, agent["id"])
        await asyncio.to_thread(store.audit, agent["name"], "claim", number)
        return response.json({"ticket": ticket})

    @app.post("/api/tickets/<number:str>/reply")
    @authenticated
    async def reply(request: Request, number: str):
        text = body(request).get("text")
        if not isinstance(text, str):
            return _error(400, "text 必须是字符串")
        return response.json(await service().reply(number, request.ctx.agent, text))

    @app.post("/api/tickets/<number:str>/close")
    @authenticated
    async def close(request: Request, number: str):
        note = body(request).get("note")
        if not isinstance(note, str):
            return _error(400, "note 必须是字符串")
        return response.json(await service().close(number, request.ctx.agent, note))

    @app.post("/api/tickets/<number:str>/transfer")
    @authenticated
    async def transfer(request: Request, number: str):
        target_name = body(request).get("agent")
        target = await asyncio.to_thread(agents.by_name, target_name) if isinstance(target_name, str) else None
        if target is None:
            return _error(400, "没有这个坐席")
        agent = request.ctx.agent
        ticket = await asyncio.to_thread(store.transfer, number, agent["id"], target["id"])
        await asyncio.to_thread(store.audit, agent["name"], "transfer", number, f"to {target['name']}")
        return response.json({"ticket": ticket})

    @app.get("/api/events")
    @authenticated
    async def events(request: Request):
        """Server-sent events: the queue whenever it changes — a new ticket, a claim, a new
        message on a ticket (state is in the database, so changes by any process show up)."""
        stream = await request.respond(content_type="text/event-stream; charset=utf-8",
                                       headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        last, idle = None, 0
        while True:
            snapshot = await asyncio.to_thread(service().queue, utcnow())
            key = json.dumps([(t["number"], t["status"], t["agent"], t["last_message_id"]) for t in snapshot])
            if key != last:
                await stream.send(f"event: queue\ndata: {json.dumps(snapshot, ensure_ascii=False)}\n\n")
                last, idle = key, 0
            else:
                idle += 1
                if idle % 15 == 0:
                    await stream.send(": keep-alive\n\n")
            await asyncio.sleep(1)

    from bot.notices.api import register_notice_routes  # 服务公告: /api/notices

    register_notice_routes(app, authenticated, body, audit=store.audit,
                           titles=lambda: {n: t.title for n, t in faq_store.get().topics.items()})
    from bot.console.faq_routes import register_faq_routes  # FAQ 改进: /api/faq/*

    register_faq_routes(app, authenticated, body, settings.database_url, settings.rasa_url)
    from bot.console.dashboard import register_dashboard  # 看板: /api/dashboard*

    register_dashboard(app, authenticated, settings.database_url)
    return app


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="钱包小助手 agent console")
    parser.add_argument("--host", default=settings().console_host)
    parser.add_argument("--port", type=int, default=settings().console_port)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    create_app().run(host=args.host, port=args.port, access_log=False, workers=1)
    return 0
