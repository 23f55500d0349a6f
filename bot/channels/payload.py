"""Validation of chat payloads, so bad input gets a clear 4xx instead of a crash or a lost message."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional

_SURROGATE = re.compile("[\ud800-\udfff]")  # lone halves of a UTF-16 pair: not text
MAX_SENDER_CHARS = 128
MAX_MESSAGE_CHARS = 20_000
"""Longer messages are refused with 413; up to this, the NLU reads the beginning."""
MAX_METADATA_BYTES = 4096
"""A message's `metadata`, as compact UTF-8 JSON, may be this big (413 above): context such as
the app's version or platform, not documents. It is stored with the message in the tracker."""
MAX_METADATA_DEPTH = 8
"""Objects and lists inside `metadata` may nest this deep (400 deeper)."""
RESERVED_METADATA_KEYS = frozenset({"masked"})
"""Keys our channel code sets itself (`masked`: what the masker hid): a client's are dropped."""


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
    return ChatPayload(sender=sender.strip(), message=message, metadata=checked_metadata(body.get("metadata")))


def checked_metadata(metadata: Any) -> Optional[Dict[str, Any]]:
    """A client's `metadata`: None, or a JSON object of at most MAX_METADATA_BYTES, else PayloadError.

    Unknown keys are kept (it is the integrator's context; nothing of ours reads it), except the
    keys our code sets (RESERVED_METADATA_KEYS); the channel masks every string in it
    (bot/privacy/metadata.py) before it is stored."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise PayloadError(400, "metadata 必须是 JSON 对象")
    if _depth(metadata, MAX_METADATA_DEPTH) > MAX_METADATA_DEPTH:
        raise PayloadError(400, f"metadata 嵌套太深（最多 {MAX_METADATA_DEPTH} 层）")
    try:
        size = len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    except (UnicodeEncodeError, ValueError):  # a lone surrogate: not text
        raise PayloadError(400, "metadata 包含无效的字符编码") from None
    if size > MAX_METADATA_BYTES:
        raise PayloadError(413, f"metadata 太大了（{size} 字节，最多 {MAX_METADATA_BYTES} 字节），请只放必要的信息")
    return {k: v for k, v in metadata.items() if k not in RESERVED_METADATA_KEYS}


def _depth(value: Any, limit: int) -> int:
    """How deep objects and lists nest (1 for a flat object); stops counting past `limit`."""
    if not isinstance(value, (dict, list)):
        return 0
    if limit < 0:
        return 1
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(child, limit - 1) for child in children), default=0)
