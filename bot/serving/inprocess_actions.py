"""Run our rasa-sdk actions inside the Rasa server instead of over HTTP.

Stock Rasa posts the whole tracker plus the domain to the action server for every custom action
and then validates the reply against a JSON schema; with jsonschema 4 that check re-validates
the schema itself on every call and was 60 % of the server's busy time in our profile. The same
`actions` package runs here through rasa-sdk's own `ActionExecutor`, so answers are identical;
`WALLET_ACTIONS=server` keeps the stock HTTP path (as `rasa shell` always uses).
"""
from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any, Dict, List, Optional

import rasa
from rasa.core.actions.action import RemoteAction
from rasa.shared.core import events as rasa_events
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import EventVerbosity
from rasa.shared.exceptions import RasaException
from rasa_sdk.executor import ActionExecutor
from bot.config import settings

logger = logging.getLogger(__name__)

ACTIONS_PACKAGE = "actions"


def inprocess_enabled() -> bool:
    return settings().inprocess_actions


@lru_cache(maxsize=1)
def executor() -> ActionExecutor:
    runner = ActionExecutor()
    runner.register_package(ACTIONS_PACKAGE)
    return runner


class InProcessAction(RemoteAction):
    """A custom action executed by rasa-sdk in this process; the rest is RemoteAction's."""

    def __init__(self, name: str, domain_dict: Dict[str, Any]) -> None:
        super().__init__(name, None)
        self._domain_dict = domain_dict

    async def run(self, output_channel, nlg, tracker, domain) -> List[Event]:
        call = {
            "next_action": self._name,
            "sender_id": tracker.sender_id,
            "tracker": tracker.current_state(EventVerbosity.ALL),
            "domain": self._domain_dict,
            "version": rasa.__version__,
        }
        try:
            result: Optional[Dict[str, Any]] = await executor().run(call)
        except Exception as err:  # the processor logs it and goes on, as for an action server error
            logger.exception("action %s failed", self._name)
            raise RasaException(f"Failed to execute custom action '{self._name}'") from err
        result = result or {}
        bot_messages = await self._utter_responses(result.get("responses", []), output_channel, nlg, tracker)
        return list(bot_messages) + rasa_events.deserialise_events(result.get("events", []))
