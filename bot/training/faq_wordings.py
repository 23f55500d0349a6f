"""The FAQ's wordings (each specific question and its phrasings) labelled with their topic.

Training reads them as examples of their topic (faq_importer.py), and the model fingerprint
covers them, and only them, of data/faq.yml (answers are read at run time: inputs.py).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator, Tuple

from bot.faq.model import Faq, load_faq


def faq_wordings(faq: Faq) -> Iterator[Tuple[str, str]]:
    """(wording, topic) for every specific question's question and phrasings, in file order."""
    for topic in faq.topics.values():
        for question in topic.questions:
            for text in (question.question, *question.phrasings):
                if text and text.strip():
                    yield text.strip(), topic.name


def wordings_digest(path: Path) -> str:
    """sha256 of the (topic, wording) pairs: what training reads from the FAQ, answers excluded."""
    digest = hashlib.sha256()
    if path.exists():
        for text, topic in faq_wordings(load_faq(path)):
            digest.update(f"{topic}\t{text}\n".encode("utf-8"))
    return digest.hexdigest()
