"""Precision and recall of the masker, per family of secret, on the labelled corpora.

Two corpora, reported separately: tests/data/pii_corpus.yml (written with the masker, by
scripts/make_pii_corpus.py) and tests/data/pii_corpus_independent.yml (built from the formats'
definitions by tests/data/generate_pii_independent.py, independently of the masker's rules).

How a case is scored, per message (a `conversation` case is several consecutive messages of one
user, masked in order with a fresh conversation memory, see carryover.py):

- a labelled secret is caught when every letter, digit or numeral of it lies inside a finding of
  its family (cvv and expiry are one family); anything less is a miss, since what is left shows;
- a finding is right when it overlaps a labelled secret of its own family; one that overlaps an
  `allowed` span (the earlier part of a number split over two messages) counts neither way; every
  other finding, and every finding in a negative case, is a false alarm of its family;
- the `negatives` family reads the masker as a yes/no on whole messages: recall is the share of
  negative messages left exactly as typed, precision the share of untouched messages that really
  had nothing to mask;
- `keep`: the last four digits of cards and phones, which must still be in the masked message.

Run: .venv/bin/python -m bot privacy-report [--show N]
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import yaml

from bot.config import ROOT
from bot.privacy.carryover import InMemoryRecentDigits, mask_in_conversation
from bot.privacy.masker import Finding, Masked, mask

CORPUS = ROOT / "tests" / "data" / "pii_corpus.yml"
INDEPENDENT = ROOT / "tests" / "data" / "pii_corpus_independent.yml"
FAMILIES = ("card", "id_number", "phone", "password", "code", "email", "cvv/expiry", "negatives")

ConversationMasker = Callable[[Sequence[str]], List[Masked]]


def family(kind: str) -> str:
    return "cvv/expiry" if kind in ("cvv", "expiry") else kind


def mask_conversation(messages: Sequence[str]) -> List[Masked]:
    """Consecutive messages of one user, masked the way the channels mask them."""
    memory = InMemoryRecentDigits()
    return [mask_in_conversation(text, "corpus", memory) for text in messages]


@dataclass
class FamilyScore:
    secrets: int = 0
    caught: int = 0
    true_findings: int = 0
    false_findings: int = 0

    @property
    def precision(self) -> float:
        total = self.true_findings + self.false_findings
        return self.true_findings / total if total else 1.0

    @property
    def recall(self) -> float:
        return self.caught / self.secrets if self.secrets else 1.0


@dataclass
class MaskerScore:
    families: Dict[str, FamilyScore] = field(default_factory=lambda: {f: FamilyScore() for f in FAMILIES})
    kept_lost: int = 0
    earlier_parts: int = 0
    earlier_parts_masked: int = 0
    messages: int = 0
    misses: List[str] = field(default_factory=list)
    false_alarms: List[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        """Over every finding of every family."""
        right = sum(s.true_findings for f, s in self.families.items() if f != "negatives")
        wrong = sum(s.false_findings for f, s in self.families.items() if f != "negatives")
        return right / (right + wrong) if right + wrong else 1.0

    @property
    def recall(self) -> float:
        """Over every labelled secret."""
        secrets = sum(s.secrets for f, s in self.families.items() if f != "negatives")
        caught = sum(s.caught for f, s in self.families.items() if f != "negatives")
        return caught / secrets if secrets else 1.0

    def as_dict(self) -> Dict[str, object]:
        return {
            "precision": round(self.precision, 4), "recall": round(self.recall, 4), "kept_digits_lost": self.kept_lost,
            "families": {f: {"precision": round(s.precision, 4), "recall": round(s.recall, 4), "n": s.secrets}
                         for f, s in self.families.items()},
        }


def _locate(source: str, value: str, where: str) -> range:
    start = source.find(value)
    if start < 0:
        raise ValueError(f"corpus value {value!r} is not in {where!r}")
    return range(start, start + len(value))


def _covered(source: str, span: range, findings: Sequence[Finding], fam: str) -> bool:
    inside = [f for f in findings if family(f.kind) == fam]
    return all(any(f.start <= i < f.end for f in inside) for i in span if source[i].isalnum())


def _score_case(result: MaskerScore, case: Dict, positive: bool, masker: ConversationMasker) -> None:
    messages = case["conversation"] if "conversation" in case else [case["text"]]
    masked = masker(messages)
    last = len(messages) - 1
    for index, (text, out) in enumerate(zip(messages, masked)):
        result.messages += 1
        where = f"{' | '.join(messages)}" if len(messages) > 1 else text
        secrets = [(s["kind"], _locate(out.source, s["value"], text)) for s in case.get("secrets", [])
                   if s.get("message", last) == index]
        allowed = [_locate(out.source, s["value"], text) for s in case.get("allowed", [])
                   if s.get("message", last) == index]
        for finding in out.findings:
            fam = family(finding.kind)
            overlaps = lambda span: finding.start < span.stop and span.start < finding.end  # noqa: E731
            if any(family(kind) == fam and overlaps(span) for kind, span in secrets):
                result.families[fam].true_findings += 1
            elif any(overlaps(span) for span in allowed):
                continue
            else:
                result.families[fam].false_findings += 1
                result.false_alarms.append(f"{fam}: {where} -> {out.text}")
        for kind, span in secrets:
            score = result.families[family(kind)]
            score.secrets += 1
            if _covered(out.source, span, out.findings, family(kind)):
                score.caught += 1
            else:
                result.misses.append(f"{family(kind)}: {where} -> {out.text}")
        for span in allowed:
            result.earlier_parts += 1
            result.earlier_parts_masked += all(any(f.start <= i < f.end for f in out.findings)
                                               for i in span if out.source[i].isalnum())
        if index == last:
            result.kept_lost += sum(1 for digits in case.get("keep", []) if digits not in out.text)
        negatives = result.families["negatives"]
        untouched = not out.findings
        if not positive:
            negatives.secrets += 1
            negatives.caught += untouched
            negatives.true_findings += untouched
        elif untouched and secrets:
            negatives.false_findings += 1  # a message with a secret that was left as it was


def score(corpus: Dict, masker: ConversationMasker = mask_conversation) -> MaskerScore:
    result = MaskerScore()
    for case in corpus["positive"]:
        _score_case(result, case, True, masker)
    for case in corpus["negative"]:
        _score_case(result, case, False, masker)
    return result


def load_corpus(path: Path = CORPUS) -> Dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def texts_of(corpus: Dict) -> List[str]:
    return [t for part in ("positive", "negative") for case in corpus[part]
            for t in (case["conversation"] if "conversation" in case else [case["text"]])]


def microseconds_per_message(texts: Sequence[str], rounds: int = 5, masker: Callable[[str], object] = mask) -> float:
    """CPU time per message, best of `rounds` passes over the texts (the masker runs on every
    message; CPU time, so other processes on the machine do not count)."""
    for text in texts:
        masker(text)
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for text in texts:
            masker(text)
        best = min(best, time.process_time() - start)
    return best / max(1, len(texts)) * 1e6


def table(name: str, corpus: Dict, result: MaskerScore) -> List[str]:
    positives, negatives = len(corpus["positive"]), len(corpus["negative"])
    lines = [f"{name}: {positives} positive / {negatives} negative cases, {result.messages} messages",
             f"  {'family':<11} {'n':>5} {'precision':>10} {'recall':>8}"]
    for fam in FAMILIES:
        s = result.families[fam]
        lines.append(f"  {fam:<11} {s.secrets:>5} {s.precision:>10.4f} {s.recall:>8.4f}")
    lines.append(f"  {'all':<11} {'':>5} {result.precision:>10.4f} {result.recall:>8.4f}"
                 f"   last four digits lost: {result.kept_lost}")
    if result.earlier_parts:
        lines.append(f"  earlier part of a split number masked too: {result.earlier_parts_masked}/{result.earlier_parts}"
                     " (not required: stored before the rest arrived)")
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bot privacy-report", description=__doc__.split("\n")[0])
    parser.add_argument("--show", type=int, default=20, help="misses and false alarms to list per corpus")
    args = parser.parse_args(argv)
    for name, path in (("hand-written corpus", CORPUS), ("independent corpus", INDEPENDENT)):
        corpus = load_corpus(path)
        result = score(corpus)
        print("\n".join(table(f"{name} ({path.relative_to(ROOT)})", corpus, result)))
        memory = InMemoryRecentDigits()
        print(f"  speed: {microseconds_per_message(texts_of(corpus)):.1f} µs CPU per message with mask(), "
              f"{microseconds_per_message(texts_of(corpus), masker=lambda t: mask_in_conversation(t, 's', memory)):.1f}"
              " µs with mask_in_conversation() (best of 5 passes)")
        for line in result.misses[:args.show]:
            print("  missed:", line)
        for line in result.false_alarms[:args.show]:
            print("  false alarm:", line)
    return 0
