"""Rasa pipeline step: a message with a scam signal is a fraud report, whatever else it asks.

Runs after the classifiers; the signals it found go into the parse data (`scam_signals`) so the
action and the agent see why.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.base import ConfiguredComponent
from bot.security.scam import scam_signals

FRAUD_INTENT = "report_fraud"


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False
)
class ScamSignalGuard(ConfiguredComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {}

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            signals = scam_signals(message.get(TEXT) or "")
            if not signals:
                continue
            ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get("name") != FRAUD_INTENT]
            message.set(INTENT, {"name": FRAUD_INTENT, "confidence": 1.0}, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [{"name": FRAUD_INTENT, "confidence": 1.0}] + ranking, add_to_output=True)
            message.set("scam_signals", signals, add_to_output=True)
        return messages
