"""Validation of chat payloads, so bad input gets a clear 4xx instead of a crash or a lost message."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Optional

_SURROGATE = re.compile("[\ud800-\udfff]")  # lone halves of a UTF-16 pair: not text
MAX_SENDER_CHARS = 128
MAX_MESSAGE_CHARS = 20_000
"""Longer messages are refused with 413; up to this, the NLU reads the beginning."""


class PayloadError(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def as_json(self) -> Dict[str, Any]:
        return {"error": self.message, "status": self.status}


@dataclass(frozen=True)
class ChatPayload:
    sender: str
    message: str
    metadata: Optional[Dict[str, Any]]


def parse_chat_payload(body: Any) -> ChatPayload:
    """`{"sender": str, "message": str, "metadata": object?}` or PayloadError."""
    if not isinstance(body, dict):
        raise PayloadError(400, "请求体必须是 JSON 对象：{\"sender\": \"…\", \"message\": \"…\"}")
    sender = body.get("sender")
    if not isinstance(sender, str) or not sender.strip():
        raise PayloadError(400, "缺少 sender（会话标识），它必须是非空字符串")
    if len(sender) > MAX_SENDER_CHARS or any(ord(c) < 32 for c in sender):
        raise PayloadError(400, f"sender 无效：最多 {MAX_SENDER_CHARS} 个可见字符")
    message = body.get("message")
    if message is None:
        raise PayloadError(400, "缺少 message（消息内容）")
    if not isinstance(message, str):
        raise PayloadError(400, "message 必须是字符串")
    if _SURROGATE.search(message) or _SURROGATE.search(sender):
        raise PayloadError(400, "消息包含无效的字符编码，请重新输入")
    if len(message) > MAX_MESSAGE_CHARS:
        raise PayloadError(413, f"消息太长了（超过 {MAX_MESSAGE_CHARS} 个字符），请精简后再发送")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise PayloadError(400, "metadata 必须是 JSON 对象")
    return ChatPayload(sender=sender.strip(), message=message, metadata=metadata)
