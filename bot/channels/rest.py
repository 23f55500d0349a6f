"""Rasa's REST channel with input validation (`POST /webhooks/rest/webhook`).

Stock RestInput passes whatever arrives to Rasa and, when processing fails, answers 200 with
no messages: the user's message is silently lost. Here bad payloads get a clear 4xx and a
processing failure a 503 the client can retry.
"""
from __future__ import annotations

import json
import logging
from typing import Awaitable, Callable

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage  # noqa: F401
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.handoff_flow import handle_message, relay
from bot.channels.payload import PayloadError, parse_chat_payload
from bot.serving.processor import install_on_start

logger = logging.getLogger(__name__)


def _json_body(request: Request):
    try:
        return json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError):
        raise PayloadError(400, "请求体不是有效的 JSON") from None


class WalletRestInput(RestInput):
    @classmethod
    def name(cls) -> str:
        return "rest"

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[None]]
    ) -> Blueprint:
        webhook = Blueprint("wallet_rest_webhook", __name__)
        install_on_start(webhook)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                payload = parse_chat_payload(_json_body(request))
            except PayloadError as err:
                return response.json(err.as_json(), status=err.status)
            collector = CollectingOutputChannel()
            try:
                extra = await handle_message(
                    request.app, on_new_message, payload.message, payload.sender,
                    self.name(), collector, payload.metadata,
                )
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
                body = _json_body(request)
                sender = parse_chat_payload({**body, "message": ""}).sender if isinstance(body, dict) else None
                if sender is None:
                    raise PayloadError(400, "请求体必须是 JSON 对象：{\"sender\": \"…\"}")
            except PayloadError as err:
                return response.json(err.as_json(), status=err.status)
            messages = await relay().outbox(sender)
            return response.json([_with_recipient(m, sender) for m in messages])

        return webhook


def _with_recipient(message, sender):
    return {"recipient_id": sender, **message}
