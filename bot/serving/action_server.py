"""`bot actions`: rasa-sdk's action server for our `actions` package, answering only our Rasa.

`make run` does not need it (Rasa runs the actions in-process, inprocess_actions.py); `make shell`,
`make actions` and `WALLET_ACTIONS=server` do. rasa-sdk's own `rasa run actions` answers anyone
who can reach the port, so this is the same app (`rasa_sdk.endpoint.create_app`, unpatched) with
one request middleware in front: every request but `/health` must carry the action server token
Rasa sends (bot/security/action_auth.py), else 401 with a JSON reason. Also unlike
`rasa run actions`: it binds 127.0.0.1 unless told otherwise, allows no cross-origin browser
calls, and keeps no access log (the token is in each request's query string).

  python -m bot actions [--port $ACTION_PORT, default 5055] [--host 127.0.0.1] [--actions actions]
"""
from __future__ import annotations

import argparse
import json
import logging
from functools import partial
from typing import Awaitable, Callable, List, Optional

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.config import settings
from bot.security.action_auth import REFUSAL, TOKEN_PARAM, token_matches

logger = logging.getLogger(__name__)

OPEN_PATHS = ("/health",)
"""Answered without the token: says only "up", for launchers waiting on the server."""


def require_token(expected: str) -> Callable[[Request], Awaitable[Optional[HTTPResponse]]]:
    """A Sanic request middleware: 401 unless the request carries `expected` as `?token=`."""
    if not expected:
        raise ValueError("the action server needs a token to compare with")

    async def check_token(request: Request) -> Optional[HTTPResponse]:
        if request.path in OPEN_PATHS:
            return None
        if token_matches(request.args.get(TOKEN_PARAM), expected):
            return None
        logger.warning("refused %s %s from %s: missing or wrong token", request.method, request.path, request.ip)
        return response.json(REFUSAL, status=401, dumps=partial(json.dumps, ensure_ascii=False))

    return check_token


def create_app(package: str = "actions", token: Optional[str] = None) -> Sanic:
    """rasa-sdk's app for `package` with the token check in front of every route."""
    from rasa_sdk.endpoint import create_app as sdk_app

    if token is None:
        from bot.security.tokens import action_token

        token = action_token()
    app = sdk_app(package, cors_origins="")
    app.register_middleware(require_token(token), "request")
    return app


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bot actions", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=settings().action_port, help="default: ACTION_PORT or 5055")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument("--actions", default="actions", help="the actions package")
    args = parser.parse_args(argv)
    from rasa_sdk import utils
    from rasa_sdk.plugin import plugin_manager

    utils.configure_colored_logging("INFO")
    utils.update_sanic_log_level()
    app = create_app(args.actions)
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    logger.info("action server on http://%s:%s (token required)", args.host, args.port)
    app.run(args.host, args.port, workers=utils.number_of_sanic_workers(), access_log=False)
    return 0
