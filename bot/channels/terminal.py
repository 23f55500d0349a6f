"""`bot rasa shell` (`make shell`): chat with the assistant in a terminal, through the hand-off flow.

Rasa's `rasa shell` talks through its `cmdline` channel, a REST channel that knows nothing of our
relay: after 转人工 the assistant went silent, 取消转人工 did nothing and agents' replies never
showed. This channel serves no route of its own. Once the server is up it runs a console loop
that talks to our REST channel over HTTP (bot/channels/rest.py), as Rasa's console talks to its
own, from this machine (a trusted back end, bot/security/clients.py). So every message takes the
path of any REST client's: masking, limits, offered-payload check, the relay — hand-off, the
place in the queue, 取消转人工, agent replies and the 1–5 rating included.

`rasa shell` habits kept: the prompt `Your input ->`; the buttons of the last answer as a
questionary choice (`0: 是 (/affirm)` …, arrow keys + Enter, last entry "Type out your own
message..."), a chosen button sends its `/intent` payload; `/stop`, Ctrl-C or Ctrl-D ends the
chat and stops the server. Added: messages from a person (`POST /webhooks/rest/poll`, every
second) are printed as they arrive, above the prompt.

credentials (bot/serving/rasa_cli.py writes the block for `bot rasa shell`): `server_url`
(default http://127.0.0.1:$RASA_PORT), `conversation_id` (default: a new one), `poll_seconds` (1).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

import aiohttp
import questionary
from prompt_toolkit.styles import Style
from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.shared.utils.cli import print_color, print_error, print_success
from rasa.shared.utils.io import bcolors
from sanic import Blueprint

from bot.config import settings
from bot.serving.quiet import quiet_warnings

logger = logging.getLogger(__name__)

STOP = "/stop"
PROMPT = "Your input ->"
FREE_TEXT = "Type out your own message..."
"""The last choice under buttons, as in Rasa's console (rasa.cli.utils.FREE_TEXT_INPUT_PROMPT)."""
REQUEST_SECONDS = 120
Message = Dict[str, Any]


def button_choices(message: Message) -> List[Tuple[str, str]]:
    """(label, what to send) per button, labelled as Rasa's console labels them."""
    choices = []
    for index, button in enumerate(message.get("buttons") or []):
        title = str(button.get("title") or "")
        payload = str(button.get("payload") or title)
        choices.append((f"{index}: {title} ({payload})", payload))
    return choices


def print_message(message: Message) -> None:
    """One message printed (its buttons as a numbered list: only the latest is asked as a choice)."""
    color = bcolors.OKGREEN if (message.get("metadata") or {}).get("from") == "agent" else bcolors.OKBLUE
    if message.get("text"):
        print_color(message["text"], color=color)
    for key, label in (("image", "Image"), ("attachment", "Attachment")):
        if message.get(key):
            print_color(f"{label}: {message[key]}", color=color)
    if message.get("buttons"):
        print_color("Buttons:", color=color)
        for label, _ in button_choices(message):
            print_color(label, color=color)
    if message.get("custom"):
        print_color(f"Custom json: {message['custom']}", color=color)


class TerminalChat:
    """The console loop: read a line (or a button), send it, print the answers; poll meanwhile."""

    def __init__(self, server_url: str, sender: str, poll_seconds: float = 1.0) -> None:
        self.base = server_url.rstrip("/") + "/webhooks/rest"
        self.sender = sender
        self.poll_seconds = poll_seconds
        self.headers: Dict[str, str] = {}
        self.lock = asyncio.Lock()  # one request at a time: replies print in the order they came
        self.session: Optional[aiohttp.ClientSession] = None

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_SECONDS)) as session:
            self.session = session
            print_success(f"Bot loaded. Type a message and press enter (use '{STOP}' to exit): ")
            poller = asyncio.create_task(self.poll_forever())
            try:
                await self.converse()
            finally:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller

    async def converse(self) -> None:
        latest: Optional[Message] = None
        while True:
            text = await self.read(latest)
            if text is None or text == STOP:
                return
            latest = await self.exchange(text) if text else None

    async def read(self, latest: Optional[Message]) -> Optional[str]:
        """The next line, or a chosen button's payload; None on Ctrl-C / Ctrl-D."""
        try:
            if latest is not None:
                choices = button_choices(latest)
                answer = await questionary.select(
                    latest.get("text") or "请选择：", [label for label, _ in choices] + [FREE_TEXT],
                    style=Style([("qmark", "#6d91d3"), ("", "#6d91d3"), ("answer", "#b373d6")]),
                ).ask_async(patch_stdout=True)
                if answer is None:
                    return None
                if answer != FREE_TEXT:
                    return dict(choices)[answer]
            answer = await questionary.text(
                "", qmark=PROMPT, style=Style([("qmark", "#b373d6"), ("", "#b373d6")]),
            ).ask_async(patch_stdout=True)
        except EOFError:  # Ctrl-D
            return None
        return answer.strip() if answer is not None else None

    async def exchange(self, text: str) -> Optional[Message]:
        """Send one message and print the replies; the last one, if it has buttons, is returned
        to be asked as a choice."""
        async with self.lock:
            replies = await self.post("webhook", {"sender": self.sender, "message": text})
            last = replies[-1] if replies and replies[-1].get("buttons") else None
            for message in replies:
                if message is not last:
                    print_message(message)
        return last

    async def poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            async with self.lock:
                for message in await self.post("poll", {"sender": self.sender}, quiet=True):
                    print_message(message)

    async def post(self, path: str, body: Dict[str, Any], quiet: bool = False) -> List[Message]:
        """POST to our REST channel; on a failure the user is told (Chinese, from the server
        when it says why) and [] is returned. A 401 (the server is not on this machine's
        loopback) switches to a session token once, as a device would."""
        assert self.session is not None
        for attempt in range(2):
            try:
                async with self.session.post(f"{self.base}/{path}", json=body, headers=self.headers) as resp:
                    status, data = resp.status, await resp.json(content_type=None)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                if not quiet:
                    print_error(f"消息未发送：连接不到服务器 ({type(exc).__name__})")
                return []
            if status == 401 and attempt == 0 and not self.headers and await self.new_session():
                body = {**body, "sender": self.sender}
                continue
            if status == 200 and isinstance(data, list):
                return [m for m in data if isinstance(m, dict)]
            if not quiet or status not in (429, 503):
                error = data.get("error") if isinstance(data, dict) else None
                print_error(f"消息未发送：{error or f'HTTP {status}'}")
            return []
        return []

    async def new_session(self) -> bool:
        assert self.session is not None
        try:
            async with self.session.post(f"{self.base}/session") as resp:
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return False
        if not isinstance(data, dict) or not data.get("token"):
            return False
        self.sender, self.headers = str(data["sender"]), {"X-Session-Token": str(data["token"])}
        return True


class WalletTerminalInput(InputChannel):
    """The terminal of `bot rasa shell`: no route, a console loop started with the server."""

    @classmethod
    def name(cls) -> str:
        return "terminal"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> "WalletTerminalInput":
        quiet_warnings()  # Rasa has configured its logging (and its warnings filter) by now
        c = credentials or {}
        return cls(str(c.get("server_url") or f"http://127.0.0.1:{settings().rasa_port}"),
                   str(c.get("conversation_id") or uuid.uuid4().hex),
                   float(c.get("poll_seconds") or 1.0))

    def __init__(self, server_url: str, conversation_id: str, poll_seconds: float = 1.0) -> None:
        self.server_url, self.conversation_id, self.poll_seconds = server_url, conversation_id, poll_seconds

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        terminal = Blueprint("wallet_terminal", __name__)

        @terminal.listener("after_server_start")
        async def start(app: Any, _: Any) -> None:
            app.add_task(self.chat(app))

        return terminal

    async def chat(self, app: Any) -> None:
        """The loop; when it ends (/stop, Ctrl-C, Ctrl-D) the server stops, as with `rasa shell`."""
        try:
            await TerminalChat(self.server_url, self.conversation_id, self.poll_seconds).run()
        except Exception:
            logger.exception("the terminal chat failed")
        finally:
            app.stop()
