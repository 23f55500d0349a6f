"""Request bodies of the console, decoded so that bad input is a 400 and never a 500.

Every console POST/PUT/DELETE body goes through `json_object`: strict UTF-8 (no UTF-16 guessing,
no BOM), JSON, an object at the top, and no string (key or value, at any depth) that the
database or the user's screen could not take: a lone surrogate (JSON "\\ud800" decodes to one,
and SQLite/PostgreSQL then fail to encode it: issue 16, findings 6 and 7) or a NUL character
(PostgreSQL refuses it in text). Field types are the route's business.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Optional

from bot.errors import StaffError

NOT_JSON = "请求体不是有效的 JSON（需要 UTF-8 编码的 JSON 对象）"
NOT_OBJECT = "请求体必须是 JSON 对象"
BAD_TEXT = "请求体里有无法处理的字符（孤立的代理字符或 NUL），请检查输入"


class BodyError(StaffError):
    """A body the console cannot read; always 400."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 400)


def bad_text(value: str) -> bool:
    """True for text with a lone surrogate or a NUL character."""
    if "\x00" in value:
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def first_bad_text(data: Any) -> Optional[str]:
    """The first string in `data` (keys included, any depth, no recursion) that `bad_text` refuses."""
    pending = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if bad_text(value):
                return value
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return None


def parse_json(raw: Optional[bytes]) -> Any:
    """The JSON value of a body (empty = {}); BodyError when it is not UTF-8 JSON."""
    if not raw:
        return {}
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BodyError(NOT_JSON) from None


def json_object(raw: Optional[bytes]) -> Dict[str, Any]:
    """The body as a JSON object whose every string is safe to store; BodyError otherwise."""
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise BodyError(NOT_OBJECT)
    if first_bad_text(data) is not None:
        raise BodyError(BAD_TEXT)
    return data
