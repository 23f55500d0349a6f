"""A second model without training: the trained model with more labelled questions.

What a fast update (bot/training/retrain.py) changes is the table of labelled questions
(bot/nlu/known_questions.py) and the model's id; this makes the same change to a copy of the
trained model in seconds, so tests can switch between two real models that answer one question
differently."""
from __future__ import annotations

import io
import json
import tarfile
import uuid
from pathlib import Path
from typing import Dict

from bot.nlu.known_questions import FILE, question_key


def model_variant(source: Path, target: Path, questions: Dict[str, str]) -> str:
    """Copy `source` to `target` with `questions` ({text: intent}) labelled; the new model_id."""
    model_id = uuid.uuid4().hex
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(source, "r:gz") as old, tarfile.open(target, "w:gz") as new:
        for member in old:
            data = old.extractfile(member).read() if member.isfile() else None
            if member.name.endswith(f"/{FILE}"):
                table = json.loads(data)
                table.update({question_key(text): intent for text, intent in questions.items()})
                data = json.dumps(table, ensure_ascii=False).encode("utf-8")
            elif member.name.lstrip("./") == "metadata.json":
                meta = json.loads(data)
                meta["model_id"] = model_id
                data = json.dumps(meta, ensure_ascii=False).encode("utf-8")
            if data is not None:
                member.size = len(data)
                new.addfile(member, io.BytesIO(data))
            else:
                new.addfile(member)
    return model_id
