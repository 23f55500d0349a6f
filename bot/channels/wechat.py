"""WeChat 公众号 input channel (`/webhooks/wechat/webhook`), built on wechatpy.

WeChat waits 5 s for an answer to each message and then retries (three times). So: every
request is authenticated (signature + 5-minute timestamp window, and in safe mode the AES
message signature), the XML is parsed by a hardened parser before wechatpy sees it, each
MsgId is processed once (by whichever worker or instance it reaches first: the MsgId is taken
with `SET NX` in bot/shared_state, Redis when WALLET_REDIS_URL is set), and the answer goes back as a passive XML reply when it is ready
within `reply_timeout` (4 s), else "success" now and the customer-service API (客服消息)
later. Several replies to one message are joined into one passive text (one WeChat bubble,
no API quota used). Buttons become numbered options the user answers with the number; the
offered buttons are kept in the shared state too, so "1" means the same on every process.
A message costs one round trip to Redis here (MsgId and the buttons offered, together) and one
more when it offers buttons.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Set, Text, Tuple

import aiohttp
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from bot.channels.handoff_flow import handle_message, relay
from bot.security.rate_limit import RateLimited
from bot.channels.wechat_xml import XmlError, parse_wechat_xml, xml_text
from bot.shared_state import FirstTime, Forget, Get, Put, SharedState, shared_state

logger = logging.getLogger(__name__)

Message = Dict[str, Any]
DEFAULT_API = "https://api.weixin.qq.com"
MAX_AGE_SECONDS = 300
PASSIVE_MAX_BYTES = 2048
"""WeChat truncates longer passive texts; longer answers go through the API in parts."""
TOKEN_ERRORS = {40001, 40014, 42001}
"""invalid / expired access token: fetch a new one and try once more."""
WELCOME = "感谢关注！"
NOT_TEXT = "抱歉，我暂时只能看懂文字消息。请用文字简单描述您遇到的问题，我马上为您解答。"
BUSY = "抱歉，系统有点忙，请稍后再发一次。"
_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
SEEN_SECONDS = 600.0
"""How long a MsgId is remembered: WeChat retries within 15 s (three times, 5 s apart)."""
BUTTONS_SECONDS = 48 * 3600.0
"""How long offered buttons are remembered: the customer-service window (48 h)."""
_UNREAD: Any = object()


def numbered(buttons: List[Dict[str, Any]]) -> str:
    """'回复数字：1. 是  2. 否' — WeChat has no buttons in text messages."""
    return "回复数字：" + "  ".join(f"{i}. {b.get('title', '')}" for i, b in enumerate(buttons, 1))


def render_batch(messages: List[Message]) -> Tuple[List[str], Optional[List[Dict[str, Any]]]]:
    """Texts to send, and the buttons the numbers refer to (those of the last message with buttons).

    Only the last set is numbered, so a digit always means one thing.
    """
    last = max((i for i, m in enumerate(messages) if m.get("buttons")), default=None)
    texts = []
    for i, m in enumerate(messages):
        parts = [str(m[k]) for k in ("text", "image", "attachment") if isinstance(m.get(k), str) and m[k].strip()]
        if i == last:
            parts.append(numbered(m["buttons"]))
        if parts:
            texts.append("\n".join(parts))
    return texts, (messages[last]["buttons"] if last is not None else None)


class ButtonMemory:
    """The last buttons offered to each user, so a reply "1" can become that button's payload.

    Kept in the shared state (`state`; default: the process's, bot/shared_state), so the number
    means the same whichever worker or instance the reply reaches. `scope` keeps two 公众号 apart."""

    def __init__(self, state: Optional[SharedState] = None, scope: str = "") -> None:
        self._state, self.scope = state, scope

    @property
    def state(self) -> SharedState:
        return self._state if self._state is not None else shared_state()

    def read(self, openid: str) -> Get:
        """The operation that reads what was offered (to send with others in one round trip)."""
        return Get(f"wechat:{self.scope}:buttons:{openid}")

    def remember(self, openid: str, buttons: Optional[List[Dict[str, Any]]], had: bool = True) -> None:
        """`had` False: nothing was offered before (known from `read`), so nothing to forget."""
        key = self.read(openid).key
        if buttons:
            payloads = [b.get("payload") or b.get("title", "") for b in buttons]
            self.state.run(Put(key, json.dumps(payloads, ensure_ascii=False), BUTTONS_SECONDS))
        elif had:
            self.state.run(Forget(key))

    def resolve(self, openid: str, text: str, stored: Any = _UNREAD) -> Optional[str]:
        """The payload a numbered answer picks; `stored`: the result of `read`, if already read."""
        choice = text.strip().translate(_DIGITS).rstrip(".、")
        if not (choice.isdecimal() and len(choice) <= 3):  # int() refuses some isdigit() ("²")
            return None
        if stored is _UNREAD:
            stored = self.state.run(self.read(openid))[0]
        try:
            payloads = json.loads(stored) if stored else []
        except ValueError:
            payloads = []
        if isinstance(payloads, list) and 1 <= int(choice) <= len(payloads):
            return str(payloads[int(choice) - 1])
        return None


class WeChatApi:
    """The two outbound calls: `/cgi-bin/token` (cached, refreshed) and `message/custom/send`."""

    def __init__(self, app_id: str, app_secret: str, base_url: str = DEFAULT_API) -> None:
        self.app_id, self.app_secret, self.base_url = app_id, app_secret, base_url.rstrip("/")
        self._token: Optional[str] = None
        self._expires_at = 0.0
        self._lock: Optional[asyncio.Lock] = None

    async def _json(self, method: str, path: str, **kwargs: Any) -> Dict[str, Any]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.request(method, f"{self.base_url}{path}", **kwargs) as resp:
                return json.loads(await resp.text())

    async def access_token(self, refresh: bool = False) -> str:
        """One fetch at a time (the token is rate-limited), renewed 5 minutes before expiry."""
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if refresh or not self._token or time.time() >= self._expires_at:
                data = await self._json("GET", "/cgi-bin/token", params={
                    "grant_type": "client_credential", "appid": self.app_id, "secret": self.app_secret})
                if "access_token" not in data:
                    raise RuntimeError(f"WeChat token refused: {data.get('errcode')} {data.get('errmsg')}")
                self._token = data["access_token"]
                self._expires_at = time.time() + int(data.get("expires_in", 7200)) - 300
            return self._token  # type: ignore[return-value]

    def invalidate(self, token: str) -> None:
        if self._token == token:
            self._token = None

    async def send_text(self, openid: str, text: str) -> bool:
        """False (logged) when WeChat refuses, e.g. 45015: the user's last message is over 48 h old."""
        body = json.dumps({"touser": openid, "msgtype": "text", "text": {"content": text}},
                          ensure_ascii=False).encode("utf-8")  # \u escapes would show up literally
        for attempt in range(2):
            try:
                token = await self.access_token()
                data = await self._json("POST", "/cgi-bin/message/custom/send", params={"access_token": token},
                                        data=body, headers={"Content-Type": "application/json; charset=utf-8"})
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, RuntimeError) as exc:
                logger.error("WeChat API unreachable for %s: %s", openid, exc)
                return False
            code = int(data.get("errcode", 0))
            if code in TOKEN_ERRORS and attempt == 0:
                self.invalidate(token)
                continue
            if code:
                logger.error("WeChat refused a message to %s: %s %s", openid, code, data.get("errmsg"))
            return code == 0
        return False


class WeChatOutput(OutputChannel):
    """Sends through the customer-service API: works outside a request (agent replies pushed by Rasa)."""

    @classmethod
    def name(cls) -> Text:
        return "wechat"

    def __init__(self, api: WeChatApi, memory: ButtonMemory) -> None:
        self.api, self.memory = api, memory

    async def send_batch(self, openid: str, messages: List[Message]) -> None:
        texts, buttons = render_batch(messages)
        if texts:
            self.memory.remember(openid, buttons)
        for text in texts:
            await self.api.send_text(openid, text)

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        await self.send_batch(recipient_id, [message])

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self.send_batch(recipient_id, [{"text": text}])


class WeChatInput(InputChannel):
    """credentials.yml: app_id, app_secret, token, encoding_aes_key (none → plain mode), api_base_url."""

    required_credentials = ("app_id", "app_secret", "token", "encoding_aes_key")
    """Switched on when the variables of these keys are all set (bot/serving/channel_switch.py);
    `api_base_url` and `reply_timeout` are optional."""
    credentials_may_be_empty = ("encoding_aes_key",)
    """Set but empty: plain mode, chosen on purpose (safe mode is the default to ask for)."""

    @classmethod
    def name(cls) -> Text:
        return "wechat"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "WeChatInput":
        c = credentials or {}
        missing = [k for k in ("app_id", "app_secret", "token") if not c.get(k)]
        if missing:
            raise ValueError(f"WeChat channel: credentials.yml lacks {', '.join(missing)}")
        return cls(str(c["app_id"]), str(c["app_secret"]), str(c["token"]),
                   str(c.get("encoding_aes_key") or "") or None,
                   str(c.get("api_base_url") or DEFAULT_API), float(c.get("reply_timeout") or 4.0))

    def __init__(self, app_id: str, app_secret: str, token: str, encoding_aes_key: Optional[str] = None,
                 api_base_url: str = DEFAULT_API, reply_timeout: float = 4.0) -> None:
        self.app_id, self.token, self.reply_timeout = app_id, token, reply_timeout
        self.crypto = WeChatCrypto(token, encoding_aes_key, app_id) if encoding_aes_key else None
        self.api = WeChatApi(app_id, app_secret, api_base_url)
        self.memory = ButtonMemory(scope=f"{self.name()}:{app_id}")
        self._background: Set[asyncio.Task] = set()

    def get_output_channel(self) -> OutputChannel:
        return WeChatOutput(self.api, self.memory)

    # -- authentication -------------------------------------------------------------------------
    def _authentic(self, request: Request) -> bool:
        """WeChat's sha1(sorted token, timestamp, nonce) and a timestamp at most 5 minutes off."""
        args = request.args
        signature, timestamp, nonce = args.get("signature", ""), args.get("timestamp", ""), args.get("nonce", "")
        try:
            check_signature(self.token, signature, timestamp, nonce)
            return abs(time.time() - int(timestamp)) <= MAX_AGE_SECONDS
        except (InvalidSignatureException, ValueError):
            return False

    def _open(self, request: Request) -> Tuple[Dict[str, str], str]:
        """(fields, XML text) of the message; XmlError → 400, InvalidSignatureException → 403."""
        outer = parse_wechat_xml(request.body)
        if self.crypto is None:
            if request.args.get("encrypt_type") == "aes":
                raise XmlError("safe mode message, but no encoding_aes_key configured")
            return outer, xml_text(request.body)
        if request.args.get("encrypt_type") != "aes" or not outer.get("Encrypt"):
            raise InvalidSignatureException()  # plain bodies are not covered by any signature
        try:
            inner = self.crypto.decrypt_message(outer, request.args.get("msg_signature", ""),
                                                request.args.get("timestamp", ""), request.args.get("nonce", ""))
        except (InvalidSignatureException, InvalidAppIdException):
            raise InvalidSignatureException() from None
        except Exception:
            raise XmlError("cannot decrypt") from None
        return parse_wechat_xml(inner), xml_text(inner)

    def _reply_xml(self, request: Request, msg: Any, text: str) -> HTTPResponse:
        # wechatpy wraps the text in CDATA as is: split any "]]>" so the XML stays well formed
        xml = TextReply(message=msg, content=text.replace("]]>", "]]]]><![CDATA[>")).render()
        if self.crypto is not None:
            xml = self.crypto.encrypt_message(xml, request.args.get("nonce", ""), str(int(time.time())))
        return response.text(xml, content_type="application/xml; charset=utf-8")

    # -- work -----------------------------------------------------------------------------------
    async def _answer(self, request: Request, msg: Any, fields: Dict[str, str],
                      on_new_message: Callable[[UserMessage], Awaitable[Any]], offered: Any = _UNREAD) -> List[Message]:
        """What to say to this message (Rasa and the hand-off relay for text). `offered`: the
        buttons this user was offered (`ButtonMemory.read`), when already read."""
        kind = fields.get("MsgType", "")
        if kind == "event":
            return [{"text": WELCOME + relay().faq.message("greet")}] if fields.get("Event", "").lower() == "subscribe" else []
        text = fields.get("Content") if kind == "text" else fields.get("Recognition") if kind == "voice" else None
        if not text or not text.strip():
            return [{"text": NOT_TEXT}]
        openid = fields["FromUserName"]
        payload = self.memory.resolve(openid, text, offered)
        # A typed "/intent{...}" would force any intent: only offered buttons may send payloads.
        text = payload if payload is not None else re.sub(r"^\s*/+", "", text)
        collector = CollectingOutputChannel()
        metadata = {"wechat": {"msg_id": fields.get("MsgId"), "to": fields.get("ToUserName"), "type": kind}}
        try:
            extra = await handle_message(request.app, on_new_message, text, openid, self.name(), collector, metadata)
        except RateLimited as err:
            return [{"text": err.text}]
        return collector.messages + extra

    async def _guarded(self, work: Awaitable[List[Message]], openid: str) -> List[Message]:
        try:
            return await work
        except Exception:  # the user must learn the message did not go through
            logger.exception("WeChat message from %s failed", openid)
            return [{"text": BUSY}]

    async def _send_later(self, task: "asyncio.Task[List[Message]]", openid: str) -> None:
        await self.get_output_channel().send_batch(openid, await task)  # type: ignore[attr-defined]

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)  # keep a reference until done
        task.add_done_callback(self._background.discard)

    async def _respond(self, request: Request, msg: Any, fields: Dict[str, str],
                       on_new_message: Callable[[UserMessage], Awaitable[Any]], offered: Any = _UNREAD) -> HTTPResponse:
        openid = fields.get("FromUserName", "")
        task = asyncio.ensure_future(self._guarded(self._answer(request, msg, fields, on_new_message, offered), openid))
        try:
            messages = await asyncio.wait_for(asyncio.shield(task), self.reply_timeout)
        except asyncio.TimeoutError:
            self._spawn(self._send_later(task, openid))
            return response.text("success")
        texts, buttons = render_batch(messages)
        passive = "\n\n".join(texts)
        if not texts:
            return response.text("success")
        if len(passive.encode("utf-8")) > PASSIVE_MAX_BYTES:
            self._spawn(self.get_output_channel().send_batch(openid, messages))  # type: ignore[attr-defined]
            return response.text("success")
        self.memory.remember(openid, buttons, had=offered is _UNREAD or offered is not None)
        return self._reply_xml(request, msg, passive)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint(f"{self.name()}_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            """URL check when the server address is saved in the WeChat admin console."""
            if not self._authentic(request):
                return response.text("forbidden", status=403)
            return response.text(request.args.get("echostr", ""))

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not self._authentic(request):
                return response.text("forbidden", status=403)
            try:
                fields, xml = self._open(request)
                msg = parse_message(xml)
                if not fields.get("FromUserName") or not fields.get("MsgType"):
                    raise XmlError("not a WeChat message")
            except InvalidSignatureException:
                return response.text("forbidden", status=403)
            except Exception as exc:  # XmlError, or wechatpy choking on an odd document
                logger.warning("WeChat: bad request body (%s)", exc)
                return response.text("bad request", status=400)
            key = fields.get("MsgId") or f"{fields['FromUserName']}|{fields.get('CreateTime')}|{fields.get('Event')}"
            openid = fields["FromUserName"]
            first, offered = self.memory.state.run(FirstTime(f"wechat:{self.memory.scope}:seen:{key}", SEEN_SECONDS),
                                                   self.memory.read(openid))
            if not first:  # WeChat's retry: the first delivery answers (or is answering), on any process
                return response.text("success")
            return await self._respond(request, msg, fields, on_new_message, offered)

        return webhook
