"""The layering of docs/architecture.md, enforced: a folder of bot/ imports only from its own
folder and from folders of lower layers (never sideways within a layer, never up), nothing in
bot/ imports the rasa-sdk `actions` package, only bot/config.py reads WALLET_* variables, and
Rasa's internals are patched only in bot/serving/patches.py (and the modules it calls).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "bot"

# Lowest first. Keep in step with the picture in docs/architecture.md.
LAYERS: List[Tuple[str, ...]] = [
    ("config", "errors", "text", "topics", "sentence_vectors", "widget"),  # foundations: settings, words, vectors
    ("shared_state",),                                  # state every process sees alike (Redis or memory)
    ("privacy", "security"),                            # masking, tokens, limits, scam signals
    ("db", "faq", "dialogue", "nlu", "serving"),        # storage, FAQ content, decisions, Rasa parts
    ("handoff",),                                       # tickets, queue, relay, agents, hours
    ("notices",),                                       # incident notices (use support hours)
    ("channels", "insights", "training"),               # channels, dashboard, train/eval/switch
    ("authoring",),                                     # staff changes to the FAQ and data
    ("console",),                                       # the agents' web app
    ("cli", "devtools"),                                # the `bot` command, developer tools
    ("__main__",),                                      # python -m bot
]
RANK: Dict[str, int] = {folder: rank for rank, folders in enumerate(LAYERS) for folder in folders}


def folder_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def bot_modules() -> Iterator[Tuple[str, Path]]:
    for path in sorted(BOT.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        rel = path.relative_to(ROOT).with_suffix("")
        yield ".".join(rel.parts).removesuffix(".__init__"), path


def imports_of(module: str, path: Path) -> Iterator[Tuple[int, str]]:
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            yield node.lineno, name
            if name == "bot":  # `from bot import config` imports bot.config
                for alias in node.names:
                    yield node.lineno, f"bot.{alias.name}"


def layer_violations() -> List[str]:
    problems = []
    for module, path in bot_modules():
        source = folder_of(module)
        for line, name in imports_of(module, path):
            if name.split(".")[0] == "actions":
                problems.append(f"{path.relative_to(ROOT)}:{line} imports the actions package ({name})")
            if not name.startswith("bot.") or name.count(".") < 1:
                continue
            target = folder_of(name)
            if target == source or target not in RANK:
                continue
            if source not in RANK:
                problems.append(f"{path.relative_to(ROOT)}: folder '{source}' has no layer in LAYERS")
            elif RANK[target] >= RANK[source]:
                how = "sideways" if RANK[target] == RANK[source] else "up"
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {how}: {source} -> {target} ({name})")
    return sorted(set(problems))


def test_every_folder_has_a_layer():
    folders = {p.name for p in BOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    folders |= {p.stem for p in BOT.glob("*.py") if p.stem != "__init__"}
    assert folders - set(RANK) == set(), "add the new folder to LAYERS and to docs/architecture.md"


def test_no_import_runs_up_or_sideways():
    assert layer_violations() == []


def test_the_check_finds_a_back_up_import(tmp_path, monkeypatch):
    """The checker itself: an import of the console from the FAQ content is reported."""
    fake = tmp_path / "bot"
    (fake / "faq").mkdir(parents=True)
    (fake / "faq" / "model.py").write_text("from bot.console.app import create_app\nfrom bot.text import x\n")
    monkeypatch.setitem(globals(), "BOT", fake)
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert layer_violations() == ["bot/faq/model.py:1 imports up: faq -> console (bot.console.app)"]


def test_architecture_doc_lists_every_layer():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [folder for folder in RANK if folder not in ("__main__",) and f"{folder}" not in doc]
    assert missing == []


def test_only_config_reads_our_environment_variables():
    reader = re.compile(r"""(environ(\.get)?\s*[\[(]|getenv\()\s*["'](WALLET_|CONSOLE_)""")
    offenders = [str(p.relative_to(ROOT)) for p in BOT.rglob("*.py")
                 if p.name != "config.py" and reader.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_rasa_is_patched_in_one_place():
    """Assignments to attributes of Rasa's classes or modules happen only where install() calls."""
    allowed = {"bot/serving/patches.py", "bot/serving/rule_states.py", "bot/serving/model_pull.py"}
    patching = re.compile(r"^\s*(Domain|RulePolicy|RasaModel|run|MessageProcessor|agent_module|Agent)\.\w+\s*=", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in BOT.rglob("*.py")
                 if patching.search(p.read_text(encoding="utf-8")) and str(p.relative_to(ROOT)) not in allowed]
    assert offenders == []
