"""Talk to Rasa's HTTP API: agent replies into the tracker, resume the assistant."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional
from urllib.parse import quote

import aiohttp

from bot.security.tokens import api_headers

logger = logging.getLogger(__name__)


ONCE_KEY = "once"
"""Metadata key on the first bot event of a write that must land once (see append_events)."""


class RasaClient:
    def __init__(self, base_url: str, retry_wait: float = 1.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry_wait = retry_wait

    async def append_events(self, conversation_id: str, events: List[Dict[str, Any]],
                            output_channel: Optional[str] = None, once: Optional[str] = None) -> bool:
        """POST /conversations/{id}/tracker/events; False (logged) when Rasa can't be reached.

        With `output_channel`, Rasa also sends the bot events to the user through that channel's
        `get_output_channel()` (push channels: socketio, telegram, wechat).

        `once`: a key stored with the first bot event. When the call fails in a way that may or
        may not have stored the events (the instance died mid-request: nginx's 502, a dropped
        connection, a 5xx), the tracker is read and the events are sent again only if the key is
        not in it, so an agent's reply reaches the user exactly once whichever instance answers.
        """
        if once:
            events = _tagged(events, once)
        url = f"{self.base_url}/conversations/{quote(conversation_id, safe='')}/tracker/events"
        params: Dict[str, str] = {}
        if output_channel:  # Rasa sends bot events to the channel only with execute_side_effects
            params.update(output_channel=output_channel, execute_side_effects="true")
        outcome = await self._post(url, events, params, conversation_id)
        for _ in range(2 if once else 0):
            if outcome != "unsure":
                break
            await asyncio.sleep(self.retry_wait)
            stored = await self._stored(conversation_id, once)
            if stored:
                logger.info("events for %s were stored before the error: not sent again", conversation_id)
                return True
            if stored is None:
                continue  # the tracker could not be read either: wait and look again
            outcome = await self._post(url, events, params, conversation_id)
        return outcome == "ok"

    async def _post(self, url: str, events: List[Dict[str, Any]], params: Dict[str, str],
                    conversation_id: str) -> str:
        """"ok", "refused" (4xx: sending it again will not help) or "unsure" (maybe stored)."""
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
                async with session.post(url, json=events, params=params or None, headers=api_headers()) as resp:
                    if resp.status < 400:
                        return "ok"
                    logger.error("Rasa refused events for %s: %s %s", conversation_id, resp.status,
                                 (await resp.text())[:300])
                    return "refused" if resp.status < 500 else "unsure"
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            logger.error("Rasa unreachable at %s: %s", self.base_url, exc)
            return "unsure"

    async def _stored(self, conversation_id: str, once: Optional[str]) -> Optional[bool]:
        """Is an event with metadata `once` in the tracker? None when it cannot be read."""
        url = f"{self.base_url}/conversations/{quote(conversation_id, safe='')}/tracker"
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
                async with session.get(url, headers=api_headers()) as resp:
                    if resp.status != 200:
                        return None
                    tracker = await resp.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return None
        return any((e.get("metadata") or {}).get(ONCE_KEY) == once for e in tracker.get("events") or [])

    async def bot_message(self, conversation_id: str, text: str, metadata: Dict[str, Any],
                          output_channel: Optional[str] = None, once: Optional[str] = None) -> bool:
        return await self.append_events(conversation_id, [{"event": "bot", "text": text, "metadata": metadata}],
                                        output_channel, once)

    async def resume(self, conversation_id: str, texts: List[str], output_channel: Optional[str] = None,
                     buttons: Optional[List[Dict[str, str]]] = None, once: Optional[str] = None) -> bool:
        # action_listen last: the rules then see the user's next message as a fresh turn
        bots = [{"event": "bot", "text": t, "metadata": {"from": "system"}} for t in texts]
        if buttons and bots:
            bots[-1]["data"] = {"buttons": buttons}
        events = [{"event": "resume"}] + bots + [{"event": "action", "name": "action_listen"}]
        return await self.append_events(conversation_id, events, output_channel, once)


def _tagged(events: List[Dict[str, Any]], once: str) -> List[Dict[str, Any]]:
    out, done = [], False
    for event in events:
        if not done and event.get("event") == "bot":
            event = {**event, "metadata": {**(event.get("metadata") or {}), ONCE_KEY: once}}
            done = True
        out.append(event)
    return out
