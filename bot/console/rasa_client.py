"""Talk to Rasa's HTTP API: agent replies into the tracker, resume the assistant."""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional
from urllib.parse import quote

import aiohttp

from bot.security.tokens import api_headers

logger = logging.getLogger(__name__)


class RasaClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    async def append_events(self, conversation_id: str, events: List[Dict[str, Any]],
                            output_channel: Optional[str] = None) -> bool:
        """POST /conversations/{id}/tracker/events; False (logged) when Rasa can't be reached.

        With `output_channel`, Rasa also sends the bot events to the user through that channel's
        `get_output_channel()` (push channels: socketio, telegram, wechat).
        """
        url = f"{self.base_url}/conversations/{quote(conversation_id, safe='')}/tracker/events"
        params: Dict[str, str] = {}
        if output_channel:  # Rasa sends bot events to the channel only with execute_side_effects
            params.update(output_channel=output_channel, execute_side_effects="true")
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
                async with session.post(url, json=events, params=params or None, headers=api_headers()) as resp:
                    if resp.status >= 400:
                        logger.error("Rasa refused events for %s: %s %s", conversation_id, resp.status,
                                     (await resp.text())[:300])
                        return False
                    return True
        except aiohttp.ClientError as exc:
            logger.error("Rasa unreachable at %s: %s", self.base_url, exc)
            return False

    async def bot_message(self, conversation_id: str, text: str, metadata: Dict[str, Any],
                          output_channel: Optional[str] = None) -> bool:
        return await self.append_events(conversation_id, [{"event": "bot", "text": text, "metadata": metadata}],
                                        output_channel)

    async def resume(self, conversation_id: str, texts: List[str], output_channel: Optional[str] = None,
                     buttons: Optional[List[Dict[str, str]]] = None) -> bool:
        # action_listen last: the rules then see the user's next message as a fresh turn
        bots = [{"event": "bot", "text": t, "metadata": {"from": "system"}} for t in texts]
        if buttons and bots:
            bots[-1]["data"] = {"buttons": buttons}
        events = [{"event": "resume"}] + bots + [{"event": "action", "name": "action_listen"}]
        return await self.append_events(conversation_id, events, output_channel)
