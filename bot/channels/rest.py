"""Rasa's REST channel with input validation (`POST /webhooks/rest/webhook`).

Stock RestInput passes whatever arrives to Rasa and, when processing fails, answers 200 with
no messages: the user's message is silently lost. Here bad payloads get a clear 4xx and a
processing failure a 503 with `Retry-After` the client can retry. A message's `X-Request-ID`
(nginx sets one; a client may send its own, one per message) is its id: sent again with the
same id, a message that was already handled gets its earlier answers (`request_id` below).

Who may write to a conversation, and poll its agent replies: a trusted back end (a request from
a trusted proxy address without X-Forwarded-For: the integrator's own server on this host,
speaking for its users) names any sender; anybody else (users through the proxy) must show the
session token issued by `POST /webhooks/rest/session` for that sender (header X-Session-Token),
so nobody can read or write another user's conversation by guessing its id. A token that is
sent must match the sender, from a back end too. (`authorize` below; docs/channels.md.)

A message's `metadata` is checked (an object of at most 4 KB, bot/channels/payload.py) and
masked like its text before it is stored. New conversations are limited per client address, and
the hand-offs a user opens count against the ticket limits (bot/security/rate_limit.py).
"""
from __future__ import annotations

import json
import logging
import re
from typing import Any, Awaitable, Callable, Dict, List, Optional

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage  # noqa: F401
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.handoff_flow import handle_message, prepare, relay
from bot.channels.payload import PayloadError, parse_chat_payload
from bot.security.clients import client_address, is_local_tool
from bot.security.rate_limit import Caller, RateLimited, check_client, check_new_session
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
                check_new_session(client_address(request.ip, request.headers.get("x-forwarded-for")),
                                  SESSIONS_BUSY_TEXT)
            except RateLimited as err:
                return rate_limited(err)
            sender, token = issue_session()
            return response.json({"sender": sender, "token": token})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:  # the address's limit is checked with the conversation's, in handle_message
                payload = parse_chat_payload(_json_body(request))
                authorize(request, payload.sender)
            except PayloadError as err:
                try:  # refused requests still count against their address
                    check_client(request.ip, request.headers.get("x-forwarded-for"), RATE_LIMITED_TEXT)
                except RateLimited as limited:
                    return rate_limited(limited)
                return response.json(err.as_json(), status=err.status)
            collector = AnswerCollector()
            try:
                extra = await handle_message(
                    request.app, on_new_message, payload.message, payload.sender,
                    self.name(), collector, payload.metadata,
                    caller=Caller(client_address(request.ip, request.headers.get("x-forwarded-for"))),
                    message_id=request_id(request),
                )
            except RateLimited as err:
                return rate_limited(err)
            except Exception:  # the user must learn the message did not go through
                logger.exception("REST message from %s failed", payload.sender)
                return response.json(
                    {"error": "系统繁忙，消息未能处理，请稍后重试", "status": 503, "retry_after": RETRY_AFTER_S},
                    status=503, headers={"Retry-After": str(RETRY_AFTER_S)})
            return response.json(collector.messages + [_with_recipient(m, payload.sender) for m in extra])

        @webhook.route("/poll", methods=["POST"])
        async def poll(request: Request) -> HTTPResponse:
            """Messages from a human agent waiting for this user (REST has no push). Taking them
            marks them delivered, so only who may write as this sender may poll (`authorize`)."""
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
    """May this request write as `sender` and take its agent replies?

    A trusted back end (a trusted proxy address, no X-Forwarded-For: the integrator's server
    speaking for its users) may, for any sender. Anybody else needs the token issued for this
    sender (401 without a valid one, 403 for another sender's). A token that is sent must match,
    from a back end too: a back end passing on its user's token cannot reach another user."""
    token = request.headers.get("x-session-token")
    if is_local_tool(request.ip, request.headers.get("x-forwarded-for")):
        if token is not None and verify_session(token) != sender:
            raise PayloadError(403, "会话令牌与 sender 不符：只能访问自己的会话")
        return
    session = verify_session(token)
    if session is None:
        raise PayloadError(401, "缺少或无效的会话令牌：请先 POST /webhooks/rest/session 获取，并放在 X-Session-Token 请求头中")
    if session != sender:
        raise PayloadError(403, "会话令牌与 sender 不符：只能访问自己的会话")


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")


def request_id(request: Request) -> Optional[str]:
    """The message's id: `X-Request-ID` (nginx's `$request_id`, or the client's own: one per
    message, the same when the message is sent again). A repeated id gets the earlier answers
    instead of being handled twice (bot/serving/processor.py). Anything else: a fresh id."""
    value = request.headers.get("x-request-id", "")
    return value if _REQUEST_ID.fullmatch(value) else None


RETRY_AFTER_S = 2
"""What a client is told to wait before sending a message again that could not be processed
(the database or Redis failed): with the same X-Request-ID it is handled once."""
RATE_LIMITED_TEXT = "请求太频繁了，请稍等几秒再试。"
SESSIONS_BUSY_TEXT = "现在新建会话的请求较多，请稍等一两分钟再试。"


def rate_limited(err: RateLimited) -> HTTPResponse:
    """429 with the polite message and when to retry."""
    seconds = max(1, int(err.retry_after + 0.999))
    return response.json({"error": err.text, "status": 429, "retry_after": seconds}, status=429,
                         headers={"Retry-After": str(seconds)})


def _with_recipient(message, sender):
    return {"recipient_id": sender, **message}
