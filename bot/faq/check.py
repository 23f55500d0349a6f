"""Project consistency check (`bot faq check`, run by `make test`).

Fails when a topic lacks NLU examples, a rule or an answer, when domain and FAQ disagree,
when two intents share an example, when a text users read links to a look-alike of an official
domain (the scam guard's check, bot/security/scam.py), or when a YAML file is malformed; every
message names the file, the topic and the field.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Set, Tuple

import yaml

from bot.faq.model import Faq, FaqError, faq_texts, load_faq
from bot.security.scam import lookalike_links
from bot.config import ROOT, faq_path
from bot.text import normalize_text
from bot.topics import ALL_INTENTS, FAQ_TOPICS

MIN_TOPIC_EXAMPLES = 40
MIN_OUT_OF_SCOPE_EXAMPLES = 200


def _load_yaml(path: Path, problems: List[str]):
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "YAML"
        problems.append(f"{path}: {where}: malformed YAML: {getattr(exc, 'problem', exc)}")
        return {}


def nlu_examples(root: Path, problems: List[str]) -> Dict[str, List[Tuple[str, Path]]]:
    """intent -> [(example, file)] over every file in data/nlu."""
    examples: Dict[str, List[Tuple[str, Path]]] = defaultdict(list)
    for path in sorted((root / "data" / "nlu").glob("*.yml")):
        for block in _load_yaml(path, problems).get("nlu") or []:
            if "intent" not in block:
                continue
            text = block.get("examples")
            if not isinstance(text, str):
                problems.append(f"{path}: intent '{block['intent']}': field 'examples' must be a text block")
                continue
            for line in text.splitlines():
                line = line.strip()
                if line.startswith("- ") and line[2:].strip():
                    examples[block["intent"]].append((line[2:].strip(), path))
    return examples


def rule_intents(root: Path, problems: List[str]) -> Set[str]:
    """Intents that start a rule (the intent right after the rule's first steps)."""
    found: Set[str] = set()
    for path in sorted((root / "data" / "rules").glob("*.yml")):
        for rule in _load_yaml(path, problems).get("rules") or []:
            for step in rule.get("steps") or []:
                if "intent" in step:
                    found.add(step["intent"])
    return found


def lookalike_problems(faq: Faq, faq_file: Path) -> List[str]:
    """Texts users read that link to a look-alike of an official domain (a phishing link in an
    answer would carry the assistant's authority)."""
    return [f"{faq_file}: {where}: links to look-alike domain '{host}' (not one of scam.official_domains "
            "in assistant.yml): users must only be sent to official domains"
            for where, text in faq_texts(faq) for host in lookalike_links(text)]


def check_project(root: Path = ROOT, faq_file: Path = None) -> List[str]:
    problems: List[str] = []
    faq_file = faq_file or (faq_path() if Path(root) == ROOT else Path(root) / "data" / "faq.yml")
    try:
        faq = load_faq(faq_file)
        faq_topics = set(faq.topics)
        problems += lookalike_problems(faq, faq_file)
    except FaqError as err:
        problems.append(str(err))
        faq_topics = set()

    domain_path = root / "domain.yml"
    domain = _load_yaml(domain_path, problems)
    domain_intents = set(domain.get("intents") or [])
    for intent in ALL_INTENTS:
        if intent not in domain_intents:
            problems.append(f"{domain_path}: intent '{intent}': missing from 'intents'")
    for intent in domain_intents - set(ALL_INTENTS):
        problems.append(f"{domain_path}: intent '{intent}': not in the topic contract (bot/topics.py)")
    for topic in faq_topics - domain_intents:
        problems.append(f"{faq_file}: topic '{topic}': has an answer but no intent in {domain_path.name}")

    examples = nlu_examples(root, problems)
    rules = rule_intents(root, problems)
    for intent in ALL_INTENTS:
        count = len(examples.get(intent, []))
        minimum = (
            MIN_TOPIC_EXAMPLES if intent in FAQ_TOPICS
            else MIN_OUT_OF_SCOPE_EXAMPLES if intent == "out_of_scope" else 10
        )
        if count < minimum:
            problems.append(f"data/nlu: intent '{intent}': field 'examples' has {count}, needs at least {minimum}")
        if intent not in rules:
            problems.append(f"data/rules: intent '{intent}': no rule handles it")
    for topic in FAQ_TOPICS:
        if topic not in faq_topics and not any(p.startswith(str(faq_file)) for p in problems):
            problems.append(f"{faq_file}: topic '{topic}': no answer")

    owners: Dict[str, Set[str]] = defaultdict(set)
    where: Dict[str, Path] = {}
    for intent, items in examples.items():
        for text, path in items:
            key = normalize_text(text)
            owners[key].add(intent)
            where.setdefault(key, path)
    for key, intents in sorted(owners.items()):
        if len(intents) > 1:
            problems.append(f"{where[key]}: example '{key}': shared by intents {sorted(intents)}")
    for intent in sorted(set(examples) - set(ALL_INTENTS)):
        problems.append(f"{examples[intent][0][1]}: intent '{intent}': not in the topic contract (bot/topics.py)")
    problems += _draft_problems(faq_file, domain_intents, owners)
    return problems


def _draft_problems(faq_file: Path, domain_intents: Set[str], owners: Dict[str, Set[str]]) -> List[str]:
    """The `drafts:` section of the FAQ file (new topics staff proposed; see bot/faq/drafts.py)."""
    from bot.faq.drafts import check_drafts

    problems: List[str] = []
    if not Path(faq_file).is_file():
        return []  # reported by the FAQ loader
    raw = _load_yaml(Path(faq_file), problems)
    if problems:
        return []  # already reported by the FAQ loader
    nlu_owners = {key: sorted(intents)[0] for key, intents in owners.items()}
    return check_drafts(raw, faq_file, set(ALL_INTENTS) | domain_intents, nlu_owners)
