"""Telegram input/output channel (`POST /webhooks/telegram/webhook`), hardened.

Rasa's built-in Telegram connector (aiogram 2) trusts any POST, calls `get_me()` on every
update, turns an exception into HTTP 500 (Telegram then re-delivers the update forever) and
its `get_output_channel()` calls `asyncio.run`, which fails inside the server's event loop, so
an agent's reply can't be pushed. This channel talks to the Bot API directly with aiohttp:

- the `X-Telegram-Bot-Api-Secret-Token` header must match `secret_token` (else 403);
- once an update is accepted the answer is always 200 (errors are logged, the user is told);
- each `update_id` is processed once (Telegram re-delivers after timeouts), by whichever worker
  or instance it reaches first (bot/shared_state: Redis when WALLET_REDIS_URL is set);
- every message goes through the hand-off relay (`bot.channels.handoff_flow`);
- buttons become inline keyboards; presses are answered (`answerCallbackQuery`) and only the
  payloads the bot offered on that message are accepted (a `/intent{...}` payload forces intents);
- texts longer than Telegram's 4096-character limit are split;
- `api_base_url` points at api.telegram.org or at a local Bot API server.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from typing import Any, Awaitable, Callable, Dict, List, Optional

import aiohttp
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.handoff_flow import handle_message
from bot.security.rate_limit import RateLimited
from bot.shared_state import FirstTime, shared_state

logger = logging.getLogger(__name__)

DEFAULT_API_BASE_URL = "https://api.telegram.org"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_MESSAGE_UNITS = 4096
"""Telegram's limit for one message, counted in UTF-16 code units."""
MAX_CALLBACK_DATA_BYTES = 64
SEEN_UPDATES_SECONDS = 3600.0
"""How long an update_id is remembered: Telegram re-delivers an update whose 200 it did not get
within minutes (it gives up after a day; our webhook answers 200 to everything it accepted)."""
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

TEXT_ONLY = "暂时只能看懂文字消息，请用文字描述您的问题。"
PRIVATE_ONLY = "为保护您的账户信息，请私聊我咨询钱包问题。"
BUSY = "系统繁忙，消息未能处理，请稍后再发一次。"
STALE_BUTTON = "这个按钮已失效，请直接输入您的问题。"
GREETING = "你好"
"""`/start` is sent to Rasa as this greeting (a `/start` text would be parsed as an intent)."""


class TelegramError(RuntimeError):
    pass


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_MESSAGE_UNITS) -> List[str]:
    """Chunks within `limit` UTF-16 units, cut at a paragraph, line, sentence or space if possible."""
    text = text.strip()
    chunks: List[str] = []
    while _units(text) > limit:
        hard = limit
        while _units(text[:hard]) > limit:  # characters outside the BMP count twice
            hard -= 1
        window = text[:hard]
        cut = -1
        for sep in ("\n\n", "\n", "。", "！", "？", "；", ". ", "，", " "):
            at = window.rfind(sep)
            if at > hard // 2:
                cut = at + len(sep)
                break
        cut = cut if cut > 0 else hard
        chunks.append(text[:cut].rstrip(" \n"))  # only the separators we cut at: other characters
        text = text[cut:].lstrip(" \n")           # Python calls whitespace (\x1c-\x1f…) are text
    if text:
        chunks.append(text)
    return chunks


def inline_keyboard(buttons: List[Dict[str, Any]]) -> Dict[str, Any]:
    """One button per row (Chinese titles are long); callback_data must fit in 64 bytes."""
    rows = []
    for button in buttons:
        title = str(button.get("title") or button.get("payload") or "")
        data = str(button.get("payload") or title)
        if len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
            logger.warning("Button payload longer than 64 bytes, sending its title instead: %r", data[:80])
            data = title.encode("utf-8")[:MAX_CALLBACK_DATA_BYTES].decode("utf-8", "ignore")
        rows.append([{"text": title, "callback_data": data}])
    return {"inline_keyboard": rows}


class TelegramOutput(OutputChannel):
    """Sends through the Bot API; needs no request and no network set-up, so pushes work."""

    @classmethod
    def name(cls) -> str:
        return "telegram"

    def __init__(self, access_token: str, api_base_url: str = DEFAULT_API_BASE_URL, timeout: float = 15) -> None:
        self.access_token = access_token
        self.api_base_url = api_base_url.rstrip("/")
        self.timeout = timeout

    async def call(self, method: str, params: Dict[str, Any]) -> Any:
        """One Bot API call; waits once on 429 (flood control). Raises TelegramError."""
        url = f"{self.api_base_url}/bot{self.access_token}/{method}"
        for attempt in range(2):
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
                    async with session.post(url, json=params) as resp:
                        body = await resp.json(content_type=None)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                if attempt == 0:
                    continue
                raise TelegramError(f"{method}: {type(exc).__name__}: {exc}") from exc
            if isinstance(body, dict) and body.get("ok"):
                return body.get("result")
            retry_after = ((body or {}).get("parameters") or {}).get("retry_after") if isinstance(body, dict) else None
            if attempt == 0 and retry_after is not None and retry_after <= 5:
                await asyncio.sleep(retry_after)
                continue
            description = body.get("description") if isinstance(body, dict) else body
            raise TelegramError(f"{method}: {resp.status} {description}")
        raise TelegramError(f"{method}: failed")  # pragma: no cover

    async def try_call(self, method: str, params: Dict[str, Any]) -> Optional[Any]:
        """Log instead of raise: one failed send must not lose the conversation's tracker update."""
        try:
            return await self.call(method, params)
        except TelegramError as exc:
            logger.error("Telegram %s to chat %s failed: %s", method, params.get("chat_id"), exc)
            return None

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        for chunk in split_text(text):
            await self.try_call("sendMessage", {"chat_id": recipient_id, "text": chunk})

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: List[Dict[str, Any]], **kwargs: Any
    ) -> None:
        chunks = split_text(text) or ["请选择："]
        for chunk in chunks[:-1]:
            await self.try_call("sendMessage", {"chat_id": recipient_id, "text": chunk})
        await self.try_call("sendMessage", {"chat_id": recipient_id, "text": chunks[-1],
                                         "reply_markup": inline_keyboard(buttons)})

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        await self.try_call("sendPhoto", {"chat_id": recipient_id, "photo": image})

    async def send_custom_json(self, recipient_id: str, json_message: Dict[str, Any], **kwargs: Any) -> None:
        """`{"method": "sendX", ...params}` is passed to the Bot API; otherwise `text` is sent."""
        params = dict(json_message)
        method = params.pop("method", "sendMessage")
        params.setdefault("chat_id", recipient_id)
        if method == "sendMessage" and not params.get("text"):
            logger.warning("Custom Telegram message without text ignored: %s", json_message)
            return
        await self.try_call(method, params)


class WalletTelegramInput(InputChannel):
    """Webhook for Telegram updates; credentials from credentials.yml (env vars substituted)."""

    required_credentials = ("access_token", "verify", "webhook_url", "secret_token")
    """Switched on when the variables of these keys are all set (bot/serving/channel_switch.py):
    the bot's token, its @username (checked by getMe), the public webhook URL and the secret
    Telegram sends back in every update. `api_base_url` is optional."""

    @classmethod
    def name(cls) -> str:
        return "telegram"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> InputChannel:
        if not credentials or not credentials.get("access_token"):
            cls.raise_missing_credentials_exception()
        return cls(
            access_token=str(credentials["access_token"]),
            verify=credentials.get("verify"),
            webhook_url=credentials.get("webhook_url"),
            secret_token=credentials.get("secret_token"),
            api_base_url=credentials.get("api_base_url") or DEFAULT_API_BASE_URL,
        )

    def __init__(
        self,
        access_token: str,
        verify: Optional[str] = None,
        webhook_url: Optional[str] = None,
        secret_token: Optional[str] = None,
        api_base_url: str = DEFAULT_API_BASE_URL,
    ) -> None:
        if secret_token is not None:
            secret_token = str(secret_token)
            if not _SECRET_RE.match(secret_token):
                raise ValueError("telegram secret_token: 1-256 characters of A-Z, a-z, 0-9, _ and -")
        else:
            logger.warning("Telegram secret_token is not set: anyone can post forged updates to the webhook")
        self.access_token = access_token
        self.verify = (verify or "").lstrip("@") or None
        self.webhook_url = webhook_url
        self.secret_token = secret_token
        self.api_base_url = api_base_url.rstrip("/")
        self.bot_id = access_token.split(":", 1)[0]
        """The bot's numeric id (the token's first part): update ids are counted per bot."""

    def get_output_channel(self) -> TelegramOutput:
        """No I/O here: Rasa calls this inside its event loop to push (`?output_channel=telegram`)."""
        return TelegramOutput(self.access_token, self.api_base_url)

    def authorized(self, request: Request) -> bool:
        if self.secret_token is None:
            return True
        given = request.headers.get(SECRET_HEADER) or ""
        return hmac.compare_digest(given.encode(), self.secret_token.encode())

    def first_time(self, update_id: Any) -> bool:
        """False for an update already taken by this or any other process (one `SET NX`)."""
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            return True
        return shared_state().run(FirstTime(f"telegram:{self.bot_id}:update:{update_id}", SEEN_UPDATES_SECONDS))[0]

    async def set_webhook(self) -> Any:
        """Registers webhook_url and the secret (Telegram only sends the header if told here)."""
        params: Dict[str, Any] = {"url": self.webhook_url, "allowed_updates": ALLOWED_UPDATES}
        if self.secret_token:
            params["secret_token"] = self.secret_token
        return await self.get_output_channel().call("setWebhook", params)

    async def check_bot(self) -> None:
        """One getMe at start-up (not per update): a wrong token or username shows in the log."""
        out = self.get_output_channel()
        try:
            me = await out.call("getMe", {})
            if self.verify and (me or {}).get("username") != self.verify:
                logger.error("Telegram token belongs to @%s, not @%s", (me or {}).get("username"), self.verify)
            if self.webhook_url:
                await self.set_webhook()
                logger.info("Telegram webhook set to %s", self.webhook_url)
        except TelegramError as exc:
            logger.error("Telegram start-up check failed: %s", exc)

    def _text(self, message: Dict[str, Any]) -> str:
        """`/start` (or `/start@bot`) → greeting; other leading slashes dropped so typed text
        can't force an intent."""
        text = (message.get("text") or "").strip()
        if text.startswith("/"):
            command, _, rest = text.partition(" ")
            name, _, bot = command.partition("@")
            if bot and self.verify and bot.lower() != self.verify.lower():
                return ""
            if name == "/start":
                return GREETING
            text = (name.lstrip("/") + (" " + rest if rest else "")).strip()
        return text

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("wallet_telegram_webhook", __name__)

        @webhook.listener("after_server_start")
        async def start(app: Any, _: Any) -> None:
            app.add_task(self.check_bot())

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/set_webhook", methods=["POST"])
        async def set_webhook(request: Request) -> HTTPResponse:
            if not self.authorized(request) or not self.webhook_url:
                return response.json({"ok": False}, status=403 if self.webhook_url else 400)
            try:
                await self.set_webhook()
            except TelegramError as exc:
                logger.error("setWebhook failed: %s", exc)
                return response.json({"ok": False, "error": str(exc)}, status=502)
            return response.json({"ok": True})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not self.authorized(request):
                logger.warning("Telegram update with a wrong secret token from %s refused", request.ip)
                return response.json({"ok": False}, status=403)
            try:
                update = json.loads(request.body or b"")
            except (ValueError, UnicodeDecodeError, RecursionError):
                logger.error("Telegram update is not JSON (%d bytes)", len(request.body or b""))
                return response.json({"ok": True})  # a retry would not be any better
            if not isinstance(update, dict) or not self.first_time(update.get("update_id")):
                return response.json({"ok": True})
            try:
                await self.process(request, update, on_new_message)
            except Exception:  # a 500 makes Telegram deliver the same update again and again
                logger.exception("Telegram update %s failed", update.get("update_id"))
                chat = _chat_id(update)
                if chat is not None:
                    await self.get_output_channel().try_call("sendMessage", {"chat_id": chat, "text": BUSY})
            return response.json({"ok": True})

        return webhook

    async def process(
        self, request: Request, update: Dict[str, Any], on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> None:
        out = self.get_output_channel()
        query = update.get("callback_query")
        if query:
            await out.try_call("answerCallbackQuery", {"callback_query_id": query.get("id")})
            message = query.get("message") or {}
            if not message:  # inline-mode message: nowhere to answer
                return
            data = query.get("data") or ""
            offered = [b.get("callback_data") for row in (message.get("reply_markup") or {}).get("inline_keyboard", [])
                       for b in row]
            if data not in offered:
                logger.warning("Callback data %r was not offered on message %s", data[:64], message.get("message_id"))
                await out.send_text_message(str(message["chat"]["id"]), STALE_BUTTON)
                return
            text, user = data, query.get("from") or {}
        else:
            message = update.get("message") or update.get("edited_message")
            if not message or "chat" not in message:
                return  # channel posts, member updates, ...: nothing to answer
            user = message.get("from") or {}
            if message.get("text") is None:  # sticker, photo, voice, location ...
                if message["chat"].get("type") == "private":
                    await out.send_text_message(str(message["chat"]["id"]), TEXT_ONLY)
                return
            text = self._text(message)
        sender = str(message["chat"]["id"])
        if message["chat"].get("type", "private") != "private":
            if text == GREETING:
                await out.send_text_message(sender, PRIVATE_ONLY)
            return  # account questions don't belong in a group
        if not text:
            return
        metadata = {"telegram": {"update_id": update.get("update_id"), "message_id": message.get("message_id"),
                                 "user_id": user.get("id"), "edited": "edited_message" in update,
                                 "callback": bool(query)}}
        try:
            extra = await handle_message(request.app, on_new_message, text, sender, self.name(), out, metadata)
        except RateLimited as err:
            await out.send_text_message(sender, err.text)
            return
        for reply in extra:
            await out.send_response(sender, dict(reply))


def _dict(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _chat_id(update: Dict[str, Any]) -> Optional[str]:
    """The private chat an update belongs to; None for groups and for malformed updates."""
    message = _dict(_dict(update.get("callback_query")).get("message")) or _dict(update.get("message")) \
        or _dict(update.get("edited_message"))
    chat = _dict(message.get("chat"))
    chat_id = chat.get("id")
    if not isinstance(chat_id, (int, str)) or isinstance(chat_id, bool) or chat.get("type", "private") != "private":
        return None
    return str(chat_id)
