"""The agent console web app (Sanic): sign-in, live queue (server-sent events), tickets.

Every /api route but /api/login needs a valid session: the HttpOnly cookie set at sign-in, or
`Authorization: Bearer <token>`. No session → 401; a ticket owned by another agent → 403.
Sign-in is throttled per name and per address (429); every attempt counts as failed from the
moment it starts, and a wrong password costs the same bcrypt work whether the name exists or not.
Changes need the CSRF token returned by /api/login and /api/me (header X-CSRF-Token) and a
same-origin Origin, unless the request authenticates with a Bearer token (any other
`Authorization` scheme does not exempt it); the cookie is HttpOnly, SameSite=Strict, and Secure
when the console is reached over HTTPS. Bodies are decoded by bot/console/bodies.py (400, never
500). The live queue stream ends when its session does (logout, expiry, agent disabled).
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from functools import wraps
from pathlib import Path
from typing import Any, Dict, List, Optional
from urllib.parse import urlparse

from sanic import Sanic, response
from sanic.request import Request

from bot.console.bodies import BodyError, bad_text, json_object, parse_json
from bot.console.rasa_client import RasaClient
from bot.console.service import ConsoleService
from bot.faq.store import shared_store
from bot.handoff.agents import agent_store
from bot.db.models import utcnow
from bot.errors import StaffError
from bot.handoff.store import ticket_store
from bot.security.clients import client_address
from bot.security.login_throttle import LoginThrottle
from bot.security.tokens import derived_key
from bot.config import handoff_settings, project_root, settings

logger = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "wallet_console"
SESSION_CHECK_SECONDS = 5.0
"""How often the live queue stream re-checks its session (logout, expiry, agent disabled)."""
MAX_NAME_CHARS, MAX_PASSWORD_CHARS = 64, 256


def _bearer(request: Request) -> Optional[str]:
    """The token of `Authorization: Bearer <token>`; None for no header or another scheme."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def _token(request: Request) -> Optional[str]:
    bearer = _bearer(request)
    return bearer if bearer is not None else request.cookies.get(COOKIE)


def _error(status: int, message: str, headers: Optional[Dict[str, str]] = None):
    return response.json({"error": message, "status": status}, status=status, headers=headers)


def csrf_token(session_token: str) -> str:
    """Bound to the session: a page of another site can neither read nor guess it."""
    return hmac.new(derived_key("console-csrf"), session_token.encode(), hashlib.sha256).hexdigest()[:40]


def _csrf_ok(request: Request) -> bool:
    if request.method in ("GET", "HEAD", "OPTIONS") or _bearer(request):
        return True  # reads, and API clients with a bearer token (browsers never add one by themselves)
    origin = request.headers.get("origin")
    if origin and urlparse(origin).netloc != request.host:
        return False
    cookie = request.cookies.get(COOKIE) or ""
    sent = request.headers.get("x-csrf-token") or ""
    return bool(cookie) and hmac.compare_digest(sent, csrf_token(cookie))


def _audit_name(name: object) -> str:
    """A name as the audit log can store it (a lone surrogate or NUL escaped, at most 64 chars)."""
    if not isinstance(name, str):
        return "(无效用户名)"
    return name.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")[:MAX_NAME_CHARS]


def _login_fields(data: object) -> Dict[str, str]:
    """name and password of a sign-in body; BodyError (400) for anything else."""
    if not isinstance(data, dict):
        raise BodyError("请求体必须是 JSON 对象")
    name, password = data.get("name"), data.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
        raise BodyError("请输入用户名和密码")
    if len(name) > MAX_NAME_CHARS or len(password) > MAX_PASSWORD_CHARS:
        raise BodyError(f"用户名最多 {MAX_NAME_CHARS} 字，密码最多 {MAX_PASSWORD_CHARS} 字")
    if bad_text(name) or bad_text(password):
        raise BodyError("用户名或密码里有无法处理的字符（孤立的代理字符或 NUL）")
    return {"name": name, "password": password}


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
    throttle = LoginThrottle(shared=True)
    app.config.KEEP_ALIVE_TIMEOUT = 30
    agents.warm_up()  # the dummy hash for unknown names, before the first sign-in

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
        """The JSON object of a request (BodyError, a 400, for anything else)."""
        return json_object(request.body)

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
        """Counted first, checked after: the throttle records the attempt before anything about
        the body can fail, and only a successful sign-in takes it back."""
        try:
            data = parse_json(request.body)
        except BodyError:
            data = None
        name = data.get("name") if isinstance(data, dict) else None
        named = isinstance(name, str) and 0 < len(name) <= MAX_NAME_CHARS and not bad_text(name)
        address = client_address(request.ip, request.headers.get("x-forwarded-for"))
        name_keys = (f"name:{name}",) if named else ()
        address_keys = (f"addr:{address}",) if address else ()  # local tools: per name only
        wait, attempt = throttle.attempt(name_keys + address_keys)
        if wait:
            minutes = max(1, int(wait // 60) + 1)
            await asyncio.to_thread(store.audit, _audit_name(name), "login_throttled")
            return _error(429, f"登录失败次数过多，请 {minutes} 分钟后再试", {"Retry-After": str(int(wait) + 1)})
        try:
            if data is None:
                raise BodyError("请求体不是有效的 JSON（需要 UTF-8 编码的 JSON 对象）")
            fields = _login_fields(data)
        except BodyError as err:
            if named:
                await asyncio.to_thread(store.audit, _audit_name(name), "login_failed", None, "请求格式错误")
            return _error(400, err.message)
        agent = await asyncio.to_thread(agents.verify, fields["name"], fields["password"])
        if agent is None:
            await asyncio.to_thread(store.audit, _audit_name(name), "login_failed")
            return _error(401, "用户名或密码错误")
        throttle.succeeded(name_keys[0], attempt, address_keys)
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
        message on a ticket (state is in the database, so changes by any process show up).
        Ends (event `logout`) within SESSION_CHECK_SECONDS once the session is no longer valid."""
        token = _token(request)
        stream = await request.respond(content_type="text/event-stream; charset=utf-8",
                                       headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        last, idle, checked = None, 0, time.monotonic()
        while True:
            if time.monotonic() - checked >= SESSION_CHECK_SECONDS:  # logged out, expired, disabled?
                if await asyncio.to_thread(agents.session_agent, token) is None:
                    await stream.send("event: logout\ndata: {}\n\n")
                    await stream.eof()
                    return
                checked = time.monotonic()
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

    register_faq_routes(app, authenticated, body, settings.database_url)
    from bot.console.dashboard import register_dashboard  # 看板: /api/dashboard*

    register_dashboard(app, authenticated, settings.database_url)
    from bot.console.model_server import register_model_server  # GET /model: Rasa's model pulling

    register_model_server(app, project_root)
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
