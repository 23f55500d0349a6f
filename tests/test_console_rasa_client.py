"""The console's writes into Rasa's tracker land exactly once, whichever instance takes them
(bot/console/rasa_client.py): when an instance dies after storing an agent's reply but before
answering (nginx: 502), the tracker is read and the reply is not sent again; when it died before
storing, it is sent again. Against a small fake of Rasa's tracker API (in this process)."""
from __future__ import annotations

import asyncio
from typing import Dict, List

from aiohttp import web

from bot.console.rasa_client import ONCE_KEY, RasaClient


class FakeRasa:
    """POST /conversations/<id>/tracker/events and GET /conversations/<id>/tracker; `script`
    says what each POST does: "ok", "store-then-502" (died after storing), "502" (died before)."""

    def __init__(self, script: List[str]) -> None:
        self.script, self.events, self.posts = list(script), [], 0

    async def post(self, request: web.Request) -> web.Response:
        self.posts += 1
        step = self.script.pop(0) if self.script else "ok"
        if step in ("ok", "store-then-502"):
            self.events += await request.json()
        if step == "400":
            return web.json_response({"message": "bad"}, status=400)
        return web.json_response({}, status=200 if step == "ok" else 502)

    async def get(self, _: web.Request) -> web.Response:
        return web.json_response({"events": self.events})


def run(script: List[str]) -> Dict:
    fake = FakeRasa(script)

    async def main():
        app = web.Application()
        app.router.add_post("/conversations/{cid}/tracker/events", fake.post)
        app.router.add_get("/conversations/{cid}/tracker", fake.get)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            client = RasaClient(f"http://127.0.0.1:{port}", retry_wait=0.01)
            return await client.bot_message("u1", "您好，我是客服小王", {"from": "agent"}, once="T1:7")
        finally:
            await runner.cleanup()

    ok = asyncio.run(main())
    return {"ok": ok, "posts": fake.posts, "stored": [e for e in fake.events if e.get("event") == "bot"]}


def test_a_reply_stored_before_the_instance_died_is_not_sent_again():
    result = run(["store-then-502"])
    assert result["ok"] and result["posts"] == 1
    assert [e["metadata"][ONCE_KEY] for e in result["stored"]] == ["T1:7"]


def test_a_reply_lost_with_the_instance_is_sent_again_once():
    result = run(["502"])
    assert result["ok"] and result["posts"] == 2 and len(result["stored"]) == 1


def test_a_refused_reply_is_not_repeated():
    result = run(["400"])
    assert not result["ok"] and result["posts"] == 1 and result["stored"] == []
