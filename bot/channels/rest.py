"""Rasa's REST channel with input validation (`POST /webhooks/rest/webhook`).

Stock RestInput passes whatever arrives to Rasa and, when processing fails, answers 200 with
no messages: the user's message is silently lost. Here bad payloads get a clear 4xx and a
processing failure a 503 the client can retry.

Who may write to a conversation: a back end on this host (the app's server, calling directly)
names any sender; a user reaching us through the proxy must show the session token issued by
`POST /webhooks/rest/session` for that sender (header X-Session-Token), so nobody can read or
write another user's conversation by guessing its id.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable, Dict, List

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage  # noqa: F401
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.handoff_flow import handle_message, prepare, relay
from bot.channels.payload import PayloadError, parse_chat_payload
from bot.security.clients import is_local_tool
from bot.security.rate_limit import RateLimited, check_client
from bot.security.tokens import issue_session, verify_session
from bot.serving.loop_lag import health_status
from bot.serving.processor import install_on_start

logger = logging.getLogger(__name__)


def _json_body(request: Request):
    try:
        return json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly nested
        raise PayloadError(400, "请求体不是有效的 JSON") from None


class WalletRestInput(RestInput):
    @classmethod
    def name(cls) -> str:
        return "rest"

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[None]]
    ) -> Blueprint:
        webhook = Blueprint("wallet_rest_webhook", __name__)
        install_on_start(webhook, prepare=prepare)

        @webhook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json(health_status(request.args.get("lag_window")))

        @webhook.route("/session", methods=["POST"])
        async def new_session(request: Request) -> HTTPResponse:
            """A new conversation id and its signed token."""
            try:
                check_client(request.ip, request.headers.get("x-forwarded-for"), RATE_LIMITED_TEXT)
            except RateLimited as err:
                return rate_limited(err)
            sender, token = issue_session()
            return response.json({"sender": sender, "token": token})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                check_client(request.ip, request.headers.get("x-forwarded-for"), RATE_LIMITED_TEXT)
                payload = parse_chat_payload(_json_body(request))
                authorize(request, payload.sender)
            except PayloadError as err:
                return response.json(err.as_json(), status=err.status)
            except RateLimited as err:
                return rate_limited(err)
            collector = AnswerCollector()
            try:
                extra = await handle_message(
                    request.app, on_new_message, payload.message, payload.sender,
                    self.name(), collector, payload.metadata,
                )
            except RateLimited as err:
                return rate_limited(err)
            except Exception:  # the user must learn the message did not go through
                logger.exception("REST message from %s failed", payload.sender)
                return response.json(
                    {"error": "系统繁忙，消息未能处理，请稍后重试", "status": 503}, status=503
                )
            return response.json(collector.messages + [_with_recipient(m, payload.sender) for m in extra])

        @webhook.route("/poll", methods=["POST"])
        async def poll(request: Request) -> HTTPResponse:
            """Messages from a human agent waiting for this user (REST has no push)."""
            try:
                check_client(request.ip, request.headers.get("x-forwarded-for"), RATE_LIMITED_TEXT)
                body = _json_body(request)
                sender = parse_chat_payload({**body, "message": ""}).sender if isinstance(body, dict) else None
                if sender is None:
                    raise PayloadError(400, "请求体必须是 JSON 对象：{\"sender\": \"…\"}")
                authorize(request, sender)
            except PayloadError as err:
                return response.json(err.as_json(), status=err.status)
            except RateLimited as err:
                return rate_limited(err)
            messages = await relay().outbox(sender)
            return response.json([_with_recipient(m, sender) for m in messages])

        return webhook


class AnswerCollector(CollectingOutputChannel):
    """Rasa's REST collector, plus `metadata.faq_id` on each message of an FAQ answer (which
    entry produced it); stock REST clients ignore the extra key."""

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        before = len(self.messages)
        await super().send_text_message(recipient_id, text, **kwargs)
        self._tag(before, kwargs)

    async def send_text_with_buttons(self, recipient_id: str, text: str, buttons: List[Dict[str, Any]],
                                     **kwargs: Any) -> None:
        before = len(self.messages)
        await super().send_text_with_buttons(recipient_id, text, buttons, **kwargs)
        self._tag(before, kwargs)

    def _tag(self, before: int, kwargs: Dict[str, Any]) -> None:
        if kwargs.get("faq_id"):
            for message in self.messages[before:]:
                message["metadata"] = {"faq_id": kwargs["faq_id"]}


def authorize(request: Request, sender: str) -> None:
    """Local back ends name any sender; users need the token issued for this sender."""
    if is_local_tool(request.ip, request.headers.get("x-forwarded-for")):
        return
    session = verify_session(request.headers.get("x-session-token"))
    if session is None:
        raise PayloadError(401, "缺少或无效的会话令牌：请先 POST /webhooks/rest/session 获取，并放在 X-Session-Token 请求头中")
    if session != sender:
        raise PayloadError(403, "会话令牌与 sender 不符：只能访问自己的会话")


RATE_LIMITED_TEXT = "请求太频繁了，请稍等几秒再试。"


def rate_limited(err: RateLimited) -> HTTPResponse:
    """429 with the polite message and when to retry."""
    seconds = max(1, int(err.retry_after + 0.999))
    return response.json({"error": err.text, "status": 429, "retry_after": seconds}, status=429,
                         headers={"Retry-After": str(seconds)})


def _with_recipient(message, sender):
    return {"recipient_id": sender, **message}
