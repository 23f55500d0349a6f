"""What the socket.io channel sends, shaped so stock Rasa widgets show it right.

Two habits of stock widgets (rasa-webchat, Rasa's own chat widget) that our messages used to
trip over:

- rasa-webchat shows the quick replies of the **last** message only. An FAQ answer is several
  messages (the answer with its related-topic buttons, maybe "您是不是想问" with question
  buttons, then "这个回答解决您的问题了吗？" with 是/否), so every button but 是/否 was lost. A
  turn's messages are therefore sent together at its end, with every button moved onto the last
  message (its own first, then the earlier ones in order, each payload once). Clients that show
  all messages (our widget) see the same buttons once, under the last message.
- The widgets render text as Markdown, where a single `\\n` is no line break: numbered steps ran
  together into one paragraph. Single line breaks are sent as Markdown hard breaks (`"  \\n"`,
  two spaces before the newline); plain-text renderers (our widget) show them as before.
  Paragraphs (`\\n\\n`) are split into separate messages by Rasa's SocketIOOutput, as always.

Only the socket.io channel does this: REST, Telegram and WeChat get Rasa's messages as they are.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Tuple

from rasa.core.channels.socketio import SocketIOOutput

_LINE_BREAK = re.compile(r"[ \t]*\n")


def markdown_breaks(text: str) -> str:
    """Every single line break of `text` as a Markdown hard break; blank lines stay paragraphs."""
    paragraphs = re.split(r"\n[ \t]*\n", text)
    return "\n\n".join(_LINE_BREAK.sub("  \n", p) for p in paragraphs)


def _buttons(payload: Dict[str, Any]) -> List[Dict[str, Any]]:
    buttons = payload.get("quick_replies") or payload.get("buttons") or []
    return [b for b in buttons if isinstance(b, dict)]


def shaped(payloads: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One turn's `bot_uttered` payloads for clients that show only the last message's quick
    replies: every button on the last text message, line breaks as Markdown hard breaks."""
    out = [dict(p) for p in payloads]
    texts = [i for i, p in enumerate(out) if isinstance(p.get("text"), str)]
    if texts:
        last = texts[-1]
        merged: List[Dict[str, Any]] = []
        seen = set()
        for i in [last] + [i for i in range(len(out)) if i != last]:
            for button in _buttons(out[i]):
                key = button.get("payload") or button.get("url") or button.get("title")
                if key not in seen:
                    seen.add(key)
                    merged.append(button)
        for i, payload in enumerate(out):
            if i != last and isinstance(payload.get("text"), str):
                payload.pop("quick_replies", None)
                payload.pop("buttons", None)
        if merged:
            out[last].pop("buttons", None)
            out[last]["quick_replies"] = merged
    for payload in out:
        if isinstance(payload.get("text"), str):
            payload["text"] = markdown_breaks(payload["text"])
    return out


def reply_payload(message: Dict[str, Any]) -> Dict[str, Any]:
    """A reply of the hand-off relay (`{text, buttons?, metadata?}`) as a `bot_uttered` payload."""
    payload: Dict[str, Any] = {"text": message["text"]}
    if message.get("buttons"):
        payload["quick_replies"] = [{"content_type": "text", "title": b["title"], "payload": b["payload"]}
                                    for b in message["buttons"]]
    if message.get("metadata"):
        payload["metadata"] = message["metadata"]
    return payload


class WalletSocketIOOutput(SocketIOOutput):
    """Rasa's socket.io output with line breaks that survive Markdown (pushes from the HTTP API:
    an agent's reply, the rating question)."""

    async def _send_message(self, socket_id: str, response: Any) -> None:
        if isinstance(response, dict):
            response = shaped([response])[0]
        await super()._send_message(socket_id, response)


class TurnOutput(SocketIOOutput):
    """Rasa's socket.io output for one user turn: holds the messages until the turn is over so
    `flush` can send them shaped (all buttons on the last message)."""

    def __init__(self, sio: Any, bot_message_evt: str) -> None:
        super().__init__(sio, bot_message_evt)
        self.held: List[Tuple[str, Dict[str, Any]]] = []

    async def _send_message(self, socket_id: str, response: Any) -> None:
        self.held.append((socket_id, response))

    async def flush(self, room: str, replies: Optional[List[Dict[str, Any]]] = None) -> None:
        """Send what Rasa said and then `replies` (already `bot_uttered` payloads) to `room`."""
        payloads = [response for _, response in self.held] + list(replies or [])
        self.held = []
        for payload in shaped(payloads):
            await self.sio.emit(self.bot_message_evt, payload, room=room)
