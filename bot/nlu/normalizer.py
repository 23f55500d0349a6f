"""Rasa pipeline step that normalises the message text before tokenisation.

Living inside the pipeline (not in a channel) means `rasa shell`, REST, every channel and
`/model/parse` all classify the same normalised text.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.base import ConfiguredComponent
from bot.text import MAX_NLU_CHARS, normalize_text


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False
)
class ChineseNormalizer(ConfiguredComponent):
    """Traditional→simplified, full-width→half-width, case, emoji, typos, length cap."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"max_chars": MAX_NLU_CHARS}

    def __init__(self, config: Dict[Text, Any]) -> None:
        super().__init__(config)
        self._max_chars = int(config.get("max_chars", MAX_NLU_CHARS))


    def _normalize(self, message: Message) -> None:
        text = message.get(TEXT)
        if text is None:
            return
        message.set(TEXT, normalize_text(text, self._max_chars))

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for example in training_data.training_examples:
            self._normalize(example)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            self._normalize(message)
        return messages
