"""What a trained model depends on, and its fingerprint.

`make run`/`make train` (scripts/train_if_changed.sh, through `bot model-fingerprint`) and the FAQ
loop's retrain job (retrain.py) both ask this module, so the two can never disagree on whether
the model in models/ is up to date. FAQ answers (data/faq.yml) and entity word lists are read at
run time and are not inputs: editing them needs no training. The FAQ's wordings (its questions and
phrasings) are: training reads them as examples of their topic (faq_wordings.py), so the
fingerprint covers them, and only them, of data/faq.yml.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator, List, Optional

from bot.training.faq_wordings import wordings_digest

FAQ_FILE = "data/faq.yml"  # the importer's default in config.yml
TRAIN_INPUTS = ("config.yml", "domain.yml", "data/nlu", "data/rules", "data/stories", "data/dictionary",
                "bot/text.py", "bot/nlu", "requirements.lock")


def input_files(root: Path) -> Iterator[Path]:
    for name in TRAIN_INPUTS:
        path = root / name
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from (p for p in path.rglob("*") if p.is_file() and p.suffix != ".pyc"
                        and "__pycache__" not in p.parts)


def fingerprint(root: Path) -> str:
    """sha256 over every input file's path (relative to root) and content, in path order."""
    digest = hashlib.sha256()
    for path in sorted(input_files(root), key=lambda p: p.relative_to(root).as_posix()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(b"faq wordings\0" + wordings_digest(root / FAQ_FILE).encode())
    return digest.hexdigest()


def main(argv: Optional[List[str]] = None) -> int:
    from bot.config import ROOT

    print(fingerprint(Path(argv[0]) if argv else ROOT))
    return 0
