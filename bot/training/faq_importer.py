"""The FAQ's own wordings as training examples of their topic (a Rasa training data importer).

Every specific question in data/faq.yml is written with the words users ask it in (the question
and a few phrasings). Those ~650 wordings are the best-targeted examples we have of the topics,
and the newer topics (withdrawal, limits, fees …) have the fewest hand-written NLU examples. So
training reads them too, through Rasa's own extension point: `importers:` in config.yml lists
Rasa's RasaFileImporter and this one, whose NLU data is the wordings, each labelled with its
question's topic. Nothing is copied: the FAQ stays the one place a wording lives, and the
question matcher (bot/faq/match.py) ranks the same wordings at run time.

A wording added to the FAQ is matched at the next hot reload; the topic classifier learns it at
the next training (the model fingerprint includes the wordings, not the answers: see
faq_wordings.wordings_digest).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Text, Union

from rasa.shared.core.domain import Domain
from rasa.shared.core.training_data.structures import StoryGraph
from rasa.shared.importers.importer import TrainingDataImporter
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.faq.model import load_faq
from bot.training.faq_wordings import faq_wordings


class FaqWordingsImporter(TrainingDataImporter):
    """NLU examples from the FAQ's wordings; no domain, stories or config of its own."""

    def __init__(self, config_file: Optional[Text] = None, domain_path: Optional[Text] = None,
                 training_data_paths: Optional[Union[List[Text], Text]] = None,
                 faq_file: Text = "data/faq.yml") -> None:
        # relative to the project being trained (config.yml's folder), like Rasa's own paths
        base = Path(config_file).parent if config_file else Path(".")
        self.faq_file = base / faq_file

    def get_nlu_data(self, language: Optional[Text] = "en") -> TrainingData:
        if not self.faq_file.exists():
            return TrainingData()
        examples = [Message(data={TEXT: text, INTENT: topic}) for text, topic in faq_wordings(load_faq(self.faq_file))]
        return TrainingData(training_examples=examples)

    def get_domain(self) -> Domain:
        return Domain.empty()

    def get_stories(self, exclusion_percentage: Optional[int] = None) -> StoryGraph:
        return StoryGraph([])

    def get_conversation_tests(self) -> StoryGraph:
        return StoryGraph([])

    def get_config(self) -> dict:
        return {}

    def get_config_file_for_auto_config(self) -> Optional[Text]:
        return None
