"""Questions the team has already labelled are answered with their label.

A training example asked again word for word (after normalisation, ignoring spaces and
punctuation) gets the intent it was labelled with, whatever the statistical models say. This
is what makes the FAQ improvement loop's fast update work: a support lead adds a question the
assistant failed on as an example of its topic, a fine-tuning run rebuilds this table (the
intent classifier stays as it was, see plain_classifier.py), and that question is answered at once without
moving any other prediction; the next full training generalises it to other wordings.

Runs after FallbackClassifier (so a labelled question is never handed off as unclear) and before
the scam guard (which still wins). Texts labelled with two different intents are left to the
models.
"""
from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

_NOISE = re.compile(r"[\s,.!?;:~，。！？；：、～…\"'“”‘’()（）]+")
FILE = "known_questions.json"


def question_key(text: Optional[str]) -> str:
    """The text as compared: normalised already by the pipeline, minus spaces and punctuation."""
    return _NOISE.sub("", text or "")


def known_questions(pairs) -> Dict[str, str]:
    """{key: intent} of (text, intent) pairs; a key seen with two intents is dropped."""
    table: Dict[str, Optional[str]] = {}
    for text, intent in pairs:
        key = question_key(text)
        if not key or not intent:
            continue
        table[key] = intent if table.get(key, intent) == intent else None
    return {k: v for k, v in table.items() if v is not None}


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class KnownQuestionClassifier(GraphComponent):
    def __init__(self, model_storage: ModelStorage, resource: Resource, table: Dict[str, str]) -> None:
        self._storage, self._resource, self.table = model_storage, resource, table

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "KnownQuestionClassifier":
        return cls(model_storage, resource, {})

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "KnownQuestionClassifier":
        try:
            with model_storage.read_from(resource) as directory:
                table = json.loads((directory / FILE).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError):
            table = {}
        return cls(model_storage, resource, table)

    def train(self, training_data: TrainingData) -> Resource:
        self.table = known_questions((m.get(TEXT), m.get(INTENT)) for m in training_data.intent_examples)
        with self._storage.write_to(self._resource) as directory:
            (directory / FILE).write_text(json.dumps(self.table, ensure_ascii=False), encoding="utf-8")
        return self._resource

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent = self.table.get(question_key(message.get(TEXT)))
            if intent is None:
                continue
            ranking = [r for r in (message.get(INTENT_RANKING_KEY) or []) if r.get("name") != intent]
            top = {"name": intent, "confidence": 1.0}
            message.set(INTENT, top, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [top] + ranking, add_to_output=True)
        return messages
