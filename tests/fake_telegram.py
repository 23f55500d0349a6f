"""A local fake of the Telegram Bot API (`/bot<token>/<method>`) that records every call.

Runs an aiohttp server in a background thread so tests can point the channel's `api_base_url`
at it and assert what would have reached Telegram, without network access.
"""
from __future__ import annotations

import asyncio
import itertools
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set

from aiohttp import web

from tests.servers import free_port


class FakeTelegram:
    def __init__(self, token: str, username: str = "wallet_helper_bot") -> None:
        self.token, self.username = token, username
        self.calls: List[Dict[str, Any]] = []
        self.failing_chats: Set[str] = set()
        """sendMessage to these chats answers 400 like a blocked/unknown chat."""
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._runner: Optional[web.AppRunner] = None
        self._thread: Optional[threading.Thread] = None

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params = await request.json() if request.body_exists else {}
        with self._lock:
            self.calls.append({"method": method, "params": params, "time": time.time()})
        if method == "getMe":
            return web.json_response({"ok": True, "result": {"id": 42, "is_bot": True, "first_name": "钱包小助手",
                                                             "username": self.username}})
        if method == "sendMessage" and str(params.get("chat_id")) in self.failing_chats:
            return web.json_response({"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
                                     status=400)
        if method.startswith("send"):
            return web.json_response({"ok": True, "result": {
                "message_id": next(self._ids), "date": int(time.time()),
                "chat": {"id": params.get("chat_id"), "type": "private"}, "text": params.get("text"),
                **({"reply_markup": params["reply_markup"]} if "reply_markup" in params else {}),
            }})
        return web.json_response({"ok": True, "result": True})

    def start(self) -> "FakeTelegram":
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/bot{token}/{method}", self._handle)
            self._runner = web.AppRunner(app)
            self._loop.run_until_complete(self._runner.setup())
            self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def calls_to(self, method: str, chat_id: Any = None) -> List[Dict[str, Any]]:
        with self._lock:
            return [c["params"] for c in self.calls if c["method"] == method
                    and (chat_id is None or str(c["params"].get("chat_id")) == str(chat_id))]

    def texts(self, chat_id: Any) -> List[str]:
        return [p.get("text", "") for p in self.calls_to("sendMessage", chat_id)]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 20) -> Any:
        deadline = time.time() + timeout
        while time.time() < deadline:
            result = predicate()
            if result:
                return result
            time.sleep(0.1)
        raise AssertionError(f"fake Telegram never saw it; calls: {self.calls[-10:]}")
