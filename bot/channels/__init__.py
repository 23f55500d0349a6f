"""Our input channels (REST, socket.io widget, Telegram, WeChat) for Rasa's server.

Rasa imports this package (credentials.yml names the channel classes) before it creates its Sanic
app, so the request size limit set here applies to every route of that server, Rasa's HTTP API
included: a body over it gets Sanic's 413 before any handler reads it.
"""
import os

MAX_REQUEST_BYTES = 1024 * 1024
os.environ.setdefault("SANIC_REQUEST_MAX_SIZE", str(MAX_REQUEST_BYTES))

from bot.security.api_guard import install as _guard_rasa_api  # noqa: E402

_guard_rasa_api()
