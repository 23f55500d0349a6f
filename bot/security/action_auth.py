"""The action server answers only our Rasa: a shared token on every call.

Anyone on the machine could post a hand-made `next_action=action_handoff` with an invented
tracker to port 5055 and get a top-priority ticket with a fake transcript. Rasa 3.6 can send a
token with every action call (`action_endpoint.token` in endpoints.yml, sent as the `token`
query parameter: `EndpointConfig.combine_parameters` in rasa/utils/endpoints.py), so:

- the token is derived from the installation's secret (`action_token()`, var/secret.key, 0600),
  by Rasa's side and by the action server's side each in its own process;
- the endpoints file Rasa reads gets the token added (`needs_token`), rendered 0600 in var/run/
  for every `bot rasa run|shell|interactive` (bot/serving/run_files.py): the token is never on a
  command line nor in an environment;
- the action server (`bot actions`, bot/serving/action_server.py) refuses every request without
  the right token with a 401 (`token_matches`: constant-time comparison).
"""
from __future__ import annotations

import hmac
from typing import Any, Dict

TOKEN_PARAM = "token"
"""The query parameter Rasa puts the token in (`EndpointConfig.token_name`'s default)."""
REFUSAL: Dict[str, Any] = {
    "error": "未授权：动作服务器只接受带有正确令牌（token 参数）的 Rasa 请求",
    "reason": "missing or wrong action server token",
    "status": 401,
}


def token_matches(given: object, expected: str) -> bool:
    """True only for the expected token; compared in constant time (no timing oracle)."""
    if not isinstance(given, str) or not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def needs_token(endpoints: Dict[str, Any]) -> bool:
    """An endpoints config whose action server call would go out without a token."""
    action = endpoints.get("action_endpoint") if isinstance(endpoints, dict) else None
    return isinstance(action, dict) and bool(action.get("url")) and not action.get("token")
