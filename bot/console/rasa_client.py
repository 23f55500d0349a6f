"""Talk to Rasa's HTTP API: agent replies into the tracker, resume the assistant."""
from __future__ import annotations

import logging
from typing import Any, Dict, List
from urllib.parse import quote

import aiohttp

logger = logging.getLogger(__name__)


class RasaClient:
    def __init__(self, base_url: str, token: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    async def append_events(self, conversation_id: str, events: List[Dict[str, Any]]) -> bool:
        """POST /conversations/{id}/tracker/events; False (logged) when Rasa can't be reached."""
        url = f"{self.base_url}/conversations/{quote(conversation_id, safe='')}/tracker/events"
        params = {"token": self.token} if self.token else None
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
                async with session.post(url, json=events, params=params) as resp:
                    if resp.status >= 400:
                        logger.error("Rasa refused events for %s: %s %s", conversation_id, resp.status,
                                     (await resp.text())[:300])
                        return False
                    return True
        except aiohttp.ClientError as exc:
            logger.error("Rasa unreachable at %s: %s", self.base_url, exc)
            return False

    async def bot_message(self, conversation_id: str, text: str, metadata: Dict[str, Any]) -> bool:
        return await self.append_events(conversation_id, [{"event": "bot", "text": text, "metadata": metadata}])

    async def resume(self, conversation_id: str, texts: List[str]) -> bool:
        # action_listen last: the rules then see the user's next message as a fresh turn
        events = ([{"event": "resume"}] + [{"event": "bot", "text": t, "metadata": {"from": "system"}} for t in texts]
                  + [{"event": "action", "name": "action_listen"}])
        return await self.append_events(conversation_id, events)
