"""Run the trained model over a labelled TSV and write the report (`make eval`)."""
from __future__ import annotations

import asyncio
import csv
import json
import logging
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import List, Optional, Tuple

from bot.training.metrics import confusion, score
from bot.config import ROOT

DEFAULT_TSV = ROOT.parent / "shared" / "eval" / "realq.tsv"


def read_labelled(path: Path) -> List[Tuple[str, str]]:
    """(text, intent) rows of a `text<TAB>intent[<TAB>…]` file; a header row is skipped."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for cols in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(cols) < 2 or (cols[0], cols[1]) == ("text", "intent"):
                continue
            rows.append((cols[0], cols[1].strip()))
    return rows


async def predict(model_path: str, texts: List[str]) -> List[dict]:
    from rasa.core.agent import Agent

    from bot.serving.patches import install

    install()  # DIET loads faster; parses are the same
    logging.getLogger().setLevel(logging.WARNING)
    for name in ("rasa", "tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.WARNING)
    agent = Agent.load(model_path)
    return [await agent.parse_message(text) for text in texts]


def plot_confusion(labels: List[str], matrix: List[List[int]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 9))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=70, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    for i, row in enumerate(matrix):
        for j, n in enumerate(row):
            if n:
                ax.text(j, i, str(n), ha="center", va="center", fontsize=7,
                        color="white" if n > max(map(max, matrix)) / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title("Intent confusion matrix")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def variant_answers(parsed: List[dict], predicted: List[str]) -> int:
    """How many answers the extracted entities switch to a specific FAQ variant."""
    from bot.faq.model import load_faq
    from bot.config import faq_path

    faq = load_faq(faq_path())
    count = 0
    for p, topic in zip(parsed, predicted):
        if topic in faq.topics:
            t = faq.topics[topic]
            count += t.answer_for(p.get("entities") or []) != t.answer
    return count


def main(tsv: Optional[str], model: str, out_dir: str) -> int:
    path = Path(tsv) if tsv else DEFAULT_TSV
    rows = read_labelled(path)
    if not rows:
        print(f"No labelled rows in {path}")
        return 1
    started = time.perf_counter()
    parsed = asyncio.run(predict(model, [text for text, _ in rows]))
    elapsed = time.perf_counter() - started
    gold = [intent for _, intent in rows]
    predicted = [(p.get("intent") or {}).get("name") or "nlu_fallback" for p in parsed]
    scores = score(gold, predicted)
    entities = sum(bool(p.get("entities")) for p in parsed)
    by_entity = Counter(e["entity"] for p in parsed for e in p.get("entities") or [])
    tailored = variant_answers(parsed, predicted)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels, matrix = confusion(gold, predicted)
    plot_confusion(labels, matrix, out / "eval_confusion.png")
    report = {
        "file": str(path),
        "rows": len(rows),
        "seconds": round(elapsed, 2),
        **asdict(scores),
        "rows_with_entities": entities,
        "entities_found": dict(by_entity),
        "answers_tailored_by_entity": tailored,
        "confusion": {"labels": labels, "matrix": matrix},
        # Row numbers, not texts: evaluation questions never get copied into the project tree.
        "errors": [
            {"row": i + 1, "gold": g, "predicted": p}
            for i, ((_, g), p) in enumerate(zip(rows, predicted))
            if g != p
        ],
    }
    (out / "eval_report.json").write_text(json.dumps(report, ensure_ascii=False, indent=1))

    print(f"Evaluated {len(rows)} rows of {path} in {elapsed:.1f} s")
    print(f"{'intent':<22}{'precision':>10}{'recall':>9}{'f1':>8}{'n':>6}")
    for label, s in scores.per_intent.items():
        print(f"{label:<22}{s['precision']:>10.2f}{s['recall']:>9.2f}{s['f1']:>8.2f}{s['support']:>6}")
    print(f"accuracy (in-scope, {scores.in_scope_rows} rows):   {scores.accuracy:.3f}")
    print(f"wrong-answer rate (in-scope):          {scores.wrong_answer_rate:.3f}")
    print(f"out_of_scope handed off ({scores.out_of_scope_rows} rows): {scores.out_of_scope_handed_off:.3f}")
    print(f"rows with a wallet entity (spaCy EntityRuler): {entities} {dict(by_entity)}")
    print(f"answers tailored to the entity (FAQ variants, e.g. refund to 银行卡 vs 余额): {tailored}")
    print(f"report: {out / 'eval_report.json'}, confusion matrix: {out / 'eval_confusion.png'}")
    return 0
