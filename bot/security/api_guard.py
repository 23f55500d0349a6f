"""Clear 400s for bad bodies on Rasa's own HTTP API.

Rasa 3.6 answers a body that is not JSON (or nested too deep, or of the wrong shape) on
`/model/parse`, `/conversations/{id}/messages`, `trigger_intent` … with a 500. A request
middleware checks the JSON and its shape first and answers 400 in Chinese; well-formed requests
go on to Rasa untouched (its JWT check included). Our channels (/webhooks/…) validate their own.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable, Dict, Optional, Tuple

Problem = Tuple[int, str]

_CONVERSATION = r"/conversations/[^/]+"
# path -> the fields a JSON object body must have, with their types
_SHAPES: Dict["re.Pattern[str]", Dict[str, type]] = {
    re.compile(r"^/model/parse$"): {"text": str},
    re.compile(rf"^{_CONVERSATION}/messages$"): {"text": str, "sender": str},
    re.compile(rf"^{_CONVERSATION}/trigger_intent$"): {"name": str},
    re.compile(rf"^{_CONVERSATION}/execute$"): {"name": str},
}
_EVENTS = re.compile(rf"^{_CONVERSATION}/tracker/events$")


def _json(body: bytes) -> Tuple[bool, Any]:
    try:
        return True, json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False, None


def check_api_request(method: str, path: str, content_type: str, body: bytes) -> Optional[Problem]:
    """None when Rasa may handle the request; else (status, message)."""
    if method not in ("POST", "PUT") or path.startswith("/webhooks/"):
        return None
    shape = next((fields for pattern, fields in _SHAPES.items() if pattern.match(path)), None)
    is_events = bool(_EVENTS.match(path))
    if shape is None and not is_events and "json" not in (content_type or ""):
        return None  # training data (YAML), model uploads: Rasa's own checks
    if not body:
        return (400, "请求体为空：需要 JSON") if shape is not None or is_events else None
    ok, data = _json(body)
    if not ok:
        return 400, "请求体不是有效的 JSON"
    if shape is not None:
        if not isinstance(data, dict):
            return 400, "请求体必须是 JSON 对象"
        for field, kind in shape.items():
            if field == "sender" and field not in data:
                continue  # optional in Rasa's API
            if not isinstance(data.get(field), kind):
                return 400, f"字段 {field} 缺失或类型不对（应为字符串）"
    if is_events:
        events = data if isinstance(data, list) else [data]
        if not all(isinstance(e, dict) and isinstance(e.get("event"), str) for e in events):
            return 400, "事件必须是带 event 字段的 JSON 对象（或它们的列表）"
    return None


def guard_middleware(response_json: Callable[..., Any]):
    async def guard(request):
        problem = check_api_request(request.method, request.path, request.content_type or "", request.body or b"")
        if problem is not None:
            status, message = problem
            return response_json({"error": message, "status": status}, status=status)
        return None

    return guard
