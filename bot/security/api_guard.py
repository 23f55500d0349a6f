"""Clear 400s and 401s on Rasa's own HTTP API, where Rasa 3.6 answers 500s.

Rasa 3.6 answers a body that is not JSON (or nested too deep, or of the wrong shape) on
`/model/parse`, `/conversations/{id}/messages`, `trigger_intent` … with a 500, and so it does
for well-formed JSON it cannot use: a tracker event its own parser refuses (`[{"event":
"user"}]`), `execute` of an action the domain does not have, a `parse_data` that is not an NLU
result. A JWT signed with another algorithm (`alg: none`) was a 500 on every protected route, and
a JWT without `exp` was accepted forever. A request middleware checks all of this first and
answers 400/401 in Chinese; well-formed requests go on to Rasa untouched (its own JWT check
included). Our channels (/webhooks/…) validate their own.

Tokens for Rasa's API (when it runs with `--jwt-secret`, as every server we start does): HS256
only, signed with that secret, with an `exp` at most MAX_TOKEN_LIFETIME_SECONDS ahead, and a
`user` object (Rasa reads its role). `bot token api-token` issues such tokens (one hour).
"""
from __future__ import annotations

import json
import re
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import jwt

Problem = Tuple[int, str]

MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600
"""An API token may not be valid for longer than this from now (a stolen one expires soon)."""
CLOCK_SKEW_SECONDS = 60
JWT_ALGORITHM = "HS256"
UNPROTECTED = frozenset({"/", "/version"})
"""Rasa's routes that need no token (the others do): a token sent there is not looked at."""

_CONVERSATION = r"/conversations/[^/]+"
# path -> the fields a JSON object body must have, with their types
_SHAPES: Dict["re.Pattern[str]", Dict[str, type]] = {
    re.compile(r"^/model/parse$"): {"text": str},
    re.compile(rf"^{_CONVERSATION}/messages$"): {"text": str, "sender": str},
    re.compile(rf"^{_CONVERSATION}/trigger_intent$"): {"name": str},
    re.compile(rf"^{_CONVERSATION}/execute$"): {"name": str},
}
_EVENTS = re.compile(rf"^{_CONVERSATION}/tracker/events$")
_MESSAGES = re.compile(rf"^{_CONVERSATION}/messages$")
_EXECUTE = re.compile(rf"^{_CONVERSATION}/execute$")
_TRIGGER = re.compile(rf"^{_CONVERSATION}/trigger_intent$")
_TRAIN = re.compile(r"^/model/train$")
_TEST = re.compile(r"^/model/test/(intents|stories)$")


def _json(body: bytes) -> Tuple[bool, Any]:
    try:
        return True, json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False, None


def is_rasa_api(path: str) -> bool:
    """Rasa's own HTTP API, not our channels (/webhooks/…) nor the widget's socket.io."""
    return not (path.startswith("/webhooks/") or path.startswith("/socket.io"))


def check_api_token(path: str, authorization: Optional[str], secret: Optional[str],
                    now: Optional[float] = None) -> Optional[Problem]:
    """None when Rasa may check the request's token itself; else (401, why).

    Only a token that is sent is looked at (without one Rasa answers 401 itself), and only when
    Rasa checks JWTs (`secret`)."""
    if not secret or authorization is None or not is_rasa_api(path) or path in UNPROTECTED:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return 401, "Authorization 请求头应为：Bearer <JWT>"
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return 401, "令牌格式不对：不是有效的 JWT"
    if header.get("alg") != JWT_ALGORITHM:
        return 401, f"令牌的签名算法必须是 {JWT_ALGORITHM}（收到 {str(header.get('alg'))[:20]}）"
    now = time.time() if now is None else now
    try:
        claims = jwt.decode(token, secret, algorithms=[JWT_ALGORITHM], options={"require": ["exp"]},
                            leeway=CLOCK_SKEW_SECONDS)
    except jwt.MissingRequiredClaimError:
        return 401, "令牌缺少 exp（过期时间）：请用 bot token api-token 重新生成"
    except jwt.ExpiredSignatureError:
        return 401, "令牌已过期：请用 bot token api-token 重新生成"
    except jwt.InvalidSignatureError:
        return 401, "令牌签名无效"
    except jwt.PyJWTError:
        return 401, "令牌无效：exp、iat 等字段格式不对"
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or exp > now + MAX_TOKEN_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS:
        return 401, f"令牌有效期太长：exp 最多为 {MAX_TOKEN_LIFETIME_SECONDS // 3600} 小时之后"
    if not isinstance(claims.get("user"), dict):
        return 401, "令牌缺少 user 对象（username、role）"
    return None


def check_api_request(method: str, path: str, content_type: str, body: bytes,
                      action_names: Optional[List[str]] = None, slots: Optional[list] = None) -> Optional[Problem]:
    """None when Rasa may handle the request; else (status, message).

    `action_names`: the loaded domain's actions (execute of any other is refused); `slots`: its
    slots (tracker events are tried on a scratch tracker with them)."""
    if method not in ("POST", "PUT") or not is_rasa_api(path):
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
    if _TRAIN.match(path):  # Rasa reads the body as YAML whatever its type: JSON trained nothing, then 500
        return 400, "/model/train 只接受 YAML 训练数据（Content-Type: application/x-yaml）"
    if _TEST.match(path):
        return _nlu_json(data)
    if is_events:
        events = data if isinstance(data, list) else [data]
        if not all(isinstance(e, dict) and isinstance(e.get("event"), str) for e in events):
            return 400, "事件必须是带 event 字段的 JSON 对象（或它们的列表）"
        return check_events(events, slots)
    if _MESSAGES.match(path) and "parse_data" in data and data["parse_data"] is not None:
        return check_parse_data(data["parse_data"])
    if _EXECUTE.match(path):
        if action_names is not None and data["name"] not in action_names:
            return 400, f"没有名为 {data['name'][:80]!r} 的动作：只能执行 domain 里的动作"
        confidence = data.get("confidence")
        if confidence is not None and (isinstance(confidence, bool) or not isinstance(confidence, (int, float))):
            return 400, "confidence 必须是数字"
        if not isinstance(data.get("policy"), (str, type(None))):
            return 400, "policy 必须是字符串"
    if _TRIGGER.match(path) and "entities" in data and not _entity_list(data["entities"]):
        return 400, "entities 必须是实体对象的列表（每个含 entity 和 value）"
    return None


def _nlu_json(data: Any) -> Optional[Problem]:
    """A JSON body of `/model/test/intents` is Rasa NLU JSON, checked with Rasa's own schema."""
    from rasa.shared.nlu.training_data.schemas.data_schema import rasa_nlu_data_schema
    from rasa.shared.utils.validation import validate_training_data

    try:
        validate_training_data(data, rasa_nlu_data_schema())
    except Exception:
        return 400, "测试数据不是 Rasa NLU 的 JSON 格式（{\"rasa_nlu_data\": {…}}），或请用 YAML"
    return None


def check_parse_data(parse_data: Any, strict: bool = True) -> Optional[Problem]:
    """`parse_data` must look like an NLU result: Rasa logs it as the user event's intent and
    entities as it is. `strict` (`/conversations/{id}/messages`): an intent name is required;
    a stored user event (tracker events) may have an empty intent."""
    if not isinstance(parse_data, dict):
        return 400, "parse_data 必须是 JSON 对象（NLU 的解析结果）"
    intent = parse_data.get("intent")
    if strict and (not isinstance(intent, dict) or not isinstance(intent.get("name"), str)):
        return 400, "parse_data.intent 必须是含 name（字符串）的对象"
    if intent is not None and (not isinstance(intent, dict) or not isinstance(intent.get("name"), (str, type(None)))):
        return 400, "parse_data.intent 必须是对象，其中 name 为字符串"
    confidence = (intent or {}).get("confidence")
    if confidence is not None and (isinstance(confidence, bool) or not isinstance(confidence, (int, float))):
        return 400, "parse_data.intent.confidence 必须是数字"
    entities = parse_data.get("entities")
    if (strict or entities is not None) and not _entity_list(entities):
        return 400, "parse_data.entities 必须是实体对象的列表（每个含 entity 和 value）"
    if strict:
        return _parsed_by_rasa([{"event": "user", "text": "", "parse_data": parse_data}], None)
    return None


def _entity_list(entities: Any) -> bool:
    return isinstance(entities, list) and all(
        isinstance(e, dict) and isinstance(e.get("entity"), str) and "value" in e for e in entities)


def check_events(events: List[Dict[str, Any]], slots: Optional[list]) -> Optional[Problem]:
    """Every event must be one Rasa's own parser (`Event.from_parameters`) reads, and the list
    must make a tracker: tried on a scratch tracker, so a bad event is a 400 here instead of a
    500 (or a broken conversation) in Rasa."""
    for i, event in enumerate(events):
        stamp = event.get("timestamp")
        if stamp is not None and (isinstance(stamp, bool) or not isinstance(stamp, (int, float))):
            return 400, f"第 {i + 1} 个事件的 timestamp 必须是数字（Unix 时间）"
        if event.get("event") == "user":
            parse_data = event.get("parse_data")
            if parse_data is not None:
                problem = check_parse_data(parse_data, strict=False)
                if problem:
                    return 400, f"第 {i + 1} 个事件：{problem[1]}"
            if not isinstance(event.get("text"), (str, type(None))):
                return 400, f"第 {i + 1} 个事件的 text 必须是字符串"
        if event.get("event") == "bot" and not isinstance(event.get("text"), (str, type(None))):
            return 400, f"第 {i + 1} 个事件的 text 必须是字符串"
        if not isinstance(event.get("name"), (str, type(None))):  # action, slot, followup, active_loop …
            return 400, f"第 {i + 1} 个事件的 name 必须是字符串"
        for field in ("data", "metadata"):
            if not isinstance(event.get(field), (dict, type(None))):
                return 400, f"第 {i + 1} 个事件的 {field} 必须是 JSON 对象"
    return _parsed_by_rasa(events, slots)


def _parsed_by_rasa(events: List[Dict[str, Any]], slots: Optional[list]) -> Optional[Problem]:
    from rasa.shared.core.events import Event
    from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity

    for i, event in enumerate(events):
        try:
            parsed = Event.from_parameters(event)
        except Exception as err:  # Rasa's parser: KeyError, ValueError, AttributeError, TypeError …
            return 400, f"第 {i + 1} 个事件 Rasa 读不了（{type(err).__name__}）：请按 Rasa 的事件格式发送"
        if parsed is None:
            return 400, f"第 {i + 1} 个事件不是 Rasa 的事件"
    try:
        tracker = DialogueStateTracker.from_dict("api-guard", events, slots)
        json.dumps(tracker.current_state(EventVerbosity.ALL))
    except Exception as err:
        return 400, f"这些事件组不成对话（{type(err).__name__}）：请按 Rasa 的事件格式发送"
    return None


def guard_middleware(response_json: Callable[..., Any], jwt_secret: Optional[str] = None):
    """The request middleware of a `rasa run` app (bot/serving/patches.py installs it)."""

    async def guard(request):
        authorization = request.headers.get("authorization")
        if jwt_secret and authorization is None and is_rasa_api(request.path) and request.path not in UNPROTECTED:
            return None  # no token: Rasa answers 401 before it reads the body (nothing to learn here)
        problem = check_api_token(request.path, authorization, jwt_secret)
        if problem is None and request.method in ("POST", "PUT") and is_rasa_api(request.path):
            agent = getattr(request.app.ctx, "agent", None)  # (not on our channels' hot path)
            domain = getattr(agent, "domain", None)
            problem = check_api_request(
                request.method, request.path, request.content_type or "", request.body or b"",
                action_names=list(domain.action_names_or_texts) if domain is not None else None,
                slots=list(domain.slots) if domain is not None else None)
        if problem is not None:
            status, message = problem
            return response_json({"error": message, "status": status}, status=status)
        return None

    return guard
