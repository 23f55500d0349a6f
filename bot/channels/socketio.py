"""Rasa's socket.io channel for the in-app chat widget, routed through the hand-off relay.

Also serves the widget itself (`/webhooks/socketio/widget.js`, the bundled socket.io client)
and a demo host page (`/webhooks/socketio/demo`): no CDN, nothing from the internet.

Stock Rasa widgets (rasa-webchat, Rasa's own chat widget) work unchanged: the signed session
token is the `session_id` of `session_confirm` and is accepted back in `session_request`, so a
stock client keeps its conversation across reloads and reconnects (our widget's `session_token`
event still works); their start payloads (`/get_started`, `/greet`, `/start`) and the empty
message some send on open get the greeting; messages are shaped for them
(bot/channels/socketio_output.py); a page of a refused origin is logged with the setting to
change (bot/channels/socketio_origin.py).

Bad input never disappears silently: a message or `metadata` the channel cannot take is
answered with a `bot_uttered` saying why (as REST answers 4xx). New conversations are limited
per client address (`session_request` without a valid token), and the hand-offs a widget user
opens count against the ticket limits (bot/security/rate_limit.py); a socket.io client is a
user's browser, never a trusted back end (bot/security/clients.py widget_address).
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput
from sanic import Blueprint, response
from sanic.request import Request
from socketio import AsyncServer

from bot.channels.handoff_flow import handle_message
from bot.channels.payload import MAX_MESSAGE_CHARS, PayloadError, checked_metadata
from bot.channels.socketio_origin import OriginCheck
from bot.channels.socketio_output import TurnOutput, WalletSocketIOOutput, reply_payload
from bot.faq.store import shared_store
from bot.security.clients import widget_address
from bot.security.rate_limit import Caller, RateLimited, check_new_session
from bot.security.tokens import issue_session, verify_session
from bot.serving.loop_lag import health_status, start_monitor
from bot.serving.processor import ensure_fast_processor
from bot.config import settings

logger = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent.parent / "widget" / "static"
SESSIONS_BUSY_MESSAGE = "sessions_busy"
DEFAULT_SESSIONS_BUSY_TEXT = ("现在咨询的人较多，请稍等一两分钟再刷新页面重试。"
                              "如遇诈骗、资金被盗等紧急情况，请立即拨打 110 报警或反诈专线 96110。")
"""Told to a widget whose address opened too many conversations (FAQ message `sessions_busy`
may reword it)."""
GREETING = "你好"
"""What a stock widget's start payload (or the empty message it sends on open) is read as: the
NLU's `greet`, as Telegram's `/start` (bot/channels/telegram.py)."""
_START_PAYLOAD = re.compile(r"/(get_started|greet|start)(\{.*\})?", re.IGNORECASE | re.DOTALL)
ASSETS = {
    "widget.js": "application/javascript; charset=utf-8",
    "widget.css": "text/css; charset=utf-8",
    "socket.io.min.js": "application/javascript; charset=utf-8",
    "demo": "text/html; charset=utf-8",
}


def start_text(message: Any) -> Optional[str]:
    """GREETING for a stock widget's start request: `/get_started`, `/greet`, `/start` (with or
    without `{entities}`), or no text at all (`{message: null}`, `""`); else None."""
    if message is None or (isinstance(message, str) and not message.strip()):
        return GREETING
    if isinstance(message, str) and _START_PAYLOAD.fullmatch(message.strip()):
        return GREETING
    return None


def returning_session(data: Dict[str, Any]) -> Optional[Tuple[str, str]]:
    """(conversation id, token) of the session a client comes back to, or None: the token we
    signed, sent back by our widget as `token` and by a stock widget as `session_id` (what we
    confirmed). Anything else (no id, a forged or foreign one, an expired token) is None."""
    for key in ("token", "session_id"):
        session_id = verify_session(data.get(key))
        if session_id is not None:
            return session_id, data[key]
    return None


def sessions_busy_text() -> str:
    faq = shared_store().get()
    return faq.fill(faq.messages.get(SESSIONS_BUSY_MESSAGE) or DEFAULT_SESSIONS_BUSY_TEXT)


def _request_of(sio: AsyncServer, sid: str, namespace: Optional[str]) -> Any:
    """The HTTP request that opened this socket (its address and headers)."""
    return (sio.get_environ(sid, namespace=namespace) or {}).get("sanic.request")


def _address(request: Any) -> str:
    return widget_address(getattr(request, "ip", None),
                          request.headers.get("x-forwarded-for") if request is not None else None)


def message_metadata(raw: Any) -> Optional[Dict[str, Any]]:
    """The `metadata` of a widget message: an object or a JSON string of one (Rasa's stock
    widgets send either), checked like REST's (bot/channels/payload.py); else PayloadError."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        if len(raw.encode("utf-8", "surrogatepass")) > 4 * 4096:  # far over the limit: no need to parse
            raise PayloadError(413, "metadata 太大了，请只放必要的信息")
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            raise PayloadError(400, "metadata 不是有效的 JSON") from None
    return checked_metadata(raw)


def shared_client_manager():
    """With several Rasa processes (Sanic workers, scale-out) a push for a widget (an agent's
    reply, sent through any process's HTTP API) must reach the process holding its socket:
    python-socketio's Redis manager relays it. WALLET_SOCKETIO_REDIS=redis://… turns it on."""
    url = settings().socketio_redis
    if not url:
        return None
    from socketio import AsyncRedisManager

    return AsyncRedisManager(url, channel="wallet-socketio")


class WalletSocketIOInput(SocketIOInput):
    """socket.io channel: session ids persisted by the widget, messages through the relay."""

    @classmethod
    def name(cls) -> str:
        return "socketio"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> "WalletSocketIOInput":
        credentials = credentials or {}
        channel = cls(
            credentials.get("user_message_evt", "user_uttered"),
            credentials.get("bot_message_evt", "bot_uttered"),
            credentials.get("namespace"),
            True,  # session persistence: the widget keeps its conversation across reloads
            credentials.get("socketio_path", "/socket.io"),
            credentials.get("jwt_key"),
            credentials.get("jwt_method", "HS256"),
            credentials.get("metadata_key", "metadata"),
        )
        origins = credentials.get("cors_allowed_origins") or None  # None: same origin only
        channel.cors_allowed_origins = [origins] if isinstance(origins, str) else origins
        return channel

    def get_output_channel(self) -> Optional[WalletSocketIOOutput]:
        """Pushes through the HTTP API (an agent's reply, the rating) with Markdown-safe line breaks."""
        if self.sio is None:
            return super().get_output_channel()
        return WalletSocketIOOutput(self.sio, self.bot_message_evt)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        origins = OriginCheck(getattr(self, "cors_allowed_origins", None))  # logs what it refuses
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=origins, client_manager=shared_client_manager())
        webhook = SocketBlueprint(sio, self.socketio_path, "wallet_socketio_webhook", __name__)
        self.sio = sio
        state: Dict[str, Any] = {}

        @webhook.listener("after_server_start")
        async def keep_app(app, _loop) -> None:
            state["app"] = app
            start_monitor()
            ensure_fast_processor(getattr(app.ctx, "agent", None))

        @webhook.route("/", methods=["GET"])
        async def health(request: Request):
            return response.json(health_status(request.args.get("lag_window")))

        from bot.notices.api import public_notices

        @webhook.route("/notices", methods=["GET"])
        async def notices(request: Request):
            """Active service notices for the widget's banner (public: topic, text, until)."""
            return await public_notices(request, getattr(self, "cors_allowed_origins", None))

        @webhook.route("/<asset:str>", methods=["GET"])
        async def asset(_: Request, asset: str):
            if asset not in ASSETS:  # a fixed list: no path from the client reaches the disk
                return response.json({"error": "not found"}, status=404)
            path = STATIC / ("demo.html" if asset == "demo" else asset)
            return await response.file(path, mime_type=ASSETS[asset], headers={"Cache-Control": "no-cache"})

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: str, data: Optional[Dict]) -> None:
            """The conversation comes from a token we signed, never from what the client names.
            A stock widget keeps the `session_id` we confirm (the token) and sends it back."""
            data = data if isinstance(data, dict) else {}
            session_id, token = returning_session(data) or (None, None)
            if session_id is None:  # a new conversation (or a forged or foreign id): limited per address
                try:
                    check_new_session(_address(_request_of(sio, sid, self.namespace)), sessions_busy_text())
                except RateLimited as err:
                    await sio.emit(self.bot_message_evt, {"text": err.text, "metadata": {"from": "system"}}, room=sid)
                    return
                session_id, token = issue_session()
            previous = (await sio.get_session(sid, namespace=self.namespace)).get("session_id")
            if previous and previous != session_id:  # this socket switches conversation: no more pushes of the old
                await sio.leave_room(sid, previous, namespace=self.namespace)
            await sio.save_session(sid, {"session_id": session_id}, namespace=self.namespace)
            await sio.enter_room(sid, session_id)  # a coroutine in python-socketio 5.x
            await sio.emit("session_confirm", token, room=sid)  # what a stock widget stores and sends back
            await sio.emit("session_token", {"session_id": session_id, "token": token}, room=sid)

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def user_message(sid: str, data: Any) -> None:
            output = TurnOutput(sio, self.bot_message_evt)
            session = await sio.get_session(sid, namespace=self.namespace)
            if not session.get("session_id"):
                await sio.emit(self.bot_message_evt, {"text": "会话已失效，请刷新页面后重试。"}, room=sid)
                return
            if not isinstance(data, dict):
                await sio.emit(self.bot_message_evt, {"text": "消息格式不正确，请刷新页面后重试。"}, room=sid)
                return
            text = start_text(data.get("message")) or data.get("message")
            if not isinstance(text, str) or len(text) > MAX_MESSAGE_CHARS:
                await sio.emit(self.bot_message_evt, {"text": "消息格式不正确或太长，请精简后再发送。"}, room=sid)
                return
            sender = session["session_id"]  # whatever session_id the client put in data is ignored
            request = _request_of(sio, sid, self.namespace)  # its address is limited in handle_message
            try:
                metadata = message_metadata(data.get(self.metadata_key))
            except PayloadError as err:  # refused with the reason, as REST answers 400/413
                await sio.emit(self.bot_message_evt, {"text": f"消息未发送：{err.message}"}, room=sid)
                return
            try:
                extra = await handle_message(state["app"], on_new_message, text, sender, self.name(), output,
                                             metadata, caller=Caller(_address(request)))
            except RateLimited as err:
                await output.flush(sender, [{"text": err.text}])
                return
            except Exception:
                logger.exception("socket.io message from %s failed", sender)
                await output.flush(sender, [{"text": "系统繁忙，消息未能处理，请稍后重试。"}])
                return
            # the whole turn at once, every button on its last message (socketio_output.py)
            await output.flush(sender, [reply_payload(m) for m in extra])

        return webhook
