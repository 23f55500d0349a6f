"""Intent classifier that blends a logistic regression with DIET's ranking.

DIET alone is over-confident on questions unlike its training data (confidence ≈1.0 on
wrong answers), so a confidence threshold cannot separate right from wrong. A logistic
regression over the same sparse word + character n-gram features is better calibrated but
less sharp. The weighted average of the two distributions keeps DIET's ranking quality and the
regression's calibration, so `FallbackClassifier` below it hands off the uncertain cases.
Place it right after DIETClassifier (with `ranking_length: 0`, the full distribution).
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData


def blend_rankings(
    first: List[Dict[str, Any]], second: List[Dict[str, Any]], first_weight: float
) -> List[Dict[str, Any]]:
    """Weighted average of two intent distributions, best first."""
    a = {r["name"]: float(r["confidence"]) for r in first}
    b = {r["name"]: float(r["confidence"]) for r in second}
    merged = {
        name: first_weight * a.get(name, 0.0) + (1.0 - first_weight) * b.get(name, 0.0)
        for name in set(a) | set(b)
    }
    return [{"name": n, "confidence": c} for n, c in sorted(merged.items(), key=lambda kv: -kv[1])]


def _has_text_features(message: Message) -> bool:
    _, sentence = message.get_sparse_features(TEXT)
    return sentence is not None and sentence.features.shape[-1] > 0 and sentence.features.nnz > 0


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True
)
class BlendedIntentClassifier(LogisticRegressionClassifier):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {**LogisticRegressionClassifier.get_default_config(), "max_iter": 300, "weight": 0.6}

    # Fine-tuning (`rasa train --finetune`, the FAQ loop's fast update) keeps the regression as it
    # was, like DIET with 0 epochs: refitting it on one more example moved 1-2 eval answers either
    # way (measured), so the update could never be shown "not worse". The new examples are
    # answered by KnownQuestionClassifier until the next full training.
    finetuning = False

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "BlendedIntentClassifier":
        component = super().load(config, model_storage, resource, execution_context, **kwargs)
        component.finetuning = bool(execution_context.is_finetuning)
        return component

    def train(self, training_data: TrainingData) -> Resource:
        if self.finetuning and hasattr(self.clf, "classes_"):
            self.persist()
            return self._resource
        return super().train(training_data)

    def process(self, messages: List[Message]) -> List[Message]:
        # A message without features (empty after normalisation) keeps DIET's answer;
        # the empty-message guard at the end of the pipeline deals with it.
        featured = [m for m in messages if _has_text_features(m)]
        earlier = {id(m): list(m.get(INTENT_RANKING_KEY) or []) for m in featured}
        if featured:
            super().process(featured)  # sets the regression's intent and ranking
        weight = float(self.config["weight"])
        for message in featured:
            previous = [r for r in earlier[id(message)] if r.get("name")]
            if not previous or not message.get(INTENT_RANKING_KEY):
                continue
            ranking = blend_rankings(message.get(INTENT_RANKING_KEY), previous, weight)
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
