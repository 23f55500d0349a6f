"""Our input channels (REST, socket.io widget, Telegram, WeChat) for Rasa's server.

Rasa imports this package (credentials.yml names the channel classes) before it creates its Sanic
app, so the request size limit set here applies to every route of that server, Rasa's HTTP API
included: a body over it gets Sanic's 413 before any handler reads it. (The JSON guard of Rasa's
API is installed with our other Rasa patches: bot/serving/patches.py.)
"""
import os

MAX_REQUEST_BYTES = 1024 * 1024
os.environ.setdefault("SANIC_REQUEST_MAX_SIZE", str(MAX_REQUEST_BYTES))
