"""Rasa pipeline step wrapping `bot.nlu.entities` (rule-based, so not trainable)."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.base import ConfiguredComponent
from bot.nlu.entities import extract_entities
from bot.config import project_path


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False
)
class WalletEntityExtractor(ConfiguredComponent, EntityExtractorMixin):
    """Adds payment_channel, bank, amount and order_id entities found by spaCy's EntityRuler."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"entities_file": "data/entities.yml"}

    def __init__(self, config: Dict[Text, Any]) -> None:
        super().__init__(config)
        self._file = str(project_path("WALLET_ENTITIES", config["entities_file"]))


    @staticmethod
    def required_packages() -> List[Text]:
        return ["spacy", "jieba"]

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            found = self.add_extractor_name(extract_entities(message.get(TEXT) or "", self._file))
            message.set(ENTITIES, message.get(ENTITIES, []) + found, add_to_output=True)
        return messages
