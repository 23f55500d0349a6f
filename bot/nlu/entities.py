"""Wallet entities (payment channel, bank, amount, order number) found with spaCy.

`spacy.blank("zh")` with the jieba segmenter (sharing the wallet dictionary that JiebaTokenizer
loads) and an EntityRuler: word lists come from `data/entities.yml`, amounts and order numbers
from token patterns. Rule-based on purpose: the FAQ picks an answer variant by these values, so
they must be exact and editable without retraining the classifier.
"""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List

import yaml

logger = logging.getLogger(__name__)

AMOUNT_UNITS = ["元", "块", "块钱", "rmb", "人民币"]


def phrase_patterns(spec: Dict[str, Dict[str, List[str]]]) -> List[Dict[str, Any]]:
    """EntityRuler phrase patterns; the canonical value travels as the pattern id."""
    patterns = []
    for label, values in spec.items():
        for canonical, words in values.items():
            for word in [canonical, *words]:
                patterns.append({"label": label, "pattern": word, "id": canonical})
    return patterns


def token_patterns() -> List[Dict[str, Any]]:
    """Amounts (`200元`, `¥35.5`, `1000 块`) and order numbers (long digit/letter runs)."""
    number = {"TEXT": {"REGEX": r"^\d+(\.\d{1,2})?$"}}
    return [
        {"label": "amount", "pattern": [number, {"LOWER": {"IN": AMOUNT_UNITS}}]},
        {"label": "amount", "pattern": [{"TEXT": {"IN": ["¥", "￥"]}}, number]},
        {"label": "amount", "pattern": [{"TEXT": {"REGEX": r"^\d+(\.\d{1,2})?(元|块|块钱)$"}}]},
        {"label": "order_id", "pattern": [{"TEXT": {"REGEX": r"^[a-zA-Z]{0,4}\d{12,32}$"}}]},
    ]


def load_entity_spec(path: Path) -> Dict[str, Dict[str, List[str]]]:
    with open(path, encoding="utf-8") as handle:
        spec = yaml.safe_load(handle) or {}
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: expected a mapping of entity -> value -> words")
    return spec


@lru_cache(maxsize=4)
def build_nlp(entities_file: str):
    """A blank Chinese spaCy pipeline with the jieba segmenter and our EntityRuler."""
    import spacy

    nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}})
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
    ruler.add_patterns(phrase_patterns(load_entity_spec(Path(entities_file))) + token_patterns())
    return nlp


def extract_entities(text: str, entities_file: str) -> List[Dict[str, Any]]:
    """Entities in Rasa's format: entity, value (canonical), start, end."""
    if not text:
        return []
    doc = build_nlp(entities_file)(text)
    found = []
    for ent in doc.ents:
        value = ent.ent_id_ or ent.text
        if ent.label_ == "amount":
            value = "".join(ch for ch in ent.text if ch.isdigit() or ch == ".")
        found.append(
            {"entity": ent.label_, "value": value, "start": ent.start_char, "end": ent.end_char}
        )
    return found
