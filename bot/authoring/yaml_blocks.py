"""Edit staff-owned YAML files by inserting text blocks, never by re-dumping the whole file.

`data/faq.yml` carries comments and a layout support staff rely on; PyYAML would drop them on
a load/dump round trip. These helpers write one new block (a draft topic, an NLU example) in
the file's own style and leave every other byte as it was. Callers re-parse the result and
compare it with what they meant to write.
"""
from __future__ import annotations

import json
import re
from typing import Any, List, Optional

import yaml


class BlockEditError(ValueError):
    """The file's layout does not allow a safe insertion (e.g. hand-edited into another form)."""


def _loads(text: str) -> Any:
    return yaml.safe_load(text)


def scalar(text: str, indent: int) -> str:
    """`text` as the value after "key:", a literal block when multi-line, else double-quoted.

    Returned with its leading space (" |\\n    line" or ' "text"'); the literal block is used
    only when it reads back identically, otherwise JSON-style quoting (valid YAML) is used.
    """
    text = text.strip("\n")
    if "\n" in text:
        pad = " " * indent
        block = " |\n" + "".join(f"{pad}{line}\n" if line else "\n" for line in text.split("\n"))
        try:
            if _loads("k:" + block) == {"k": text + "\n"}:
                return block.rstrip("\n")
        except yaml.YAMLError:
            pass
    return " " + json.dumps(text, ensure_ascii=False)


def _header_index(lines: List[str], key: str) -> Optional[int]:
    pattern = re.compile(rf"^{re.escape(key)}:\s*(#.*)?$")
    for i, line in enumerate(lines):
        if pattern.match(line.rstrip("\n")):
            return i
    return None


def append_to_section(doc: str, key: str, block: str, comment: str = "") -> str:
    """Add `block` (already indented under `key`) at the end of top-level mapping `key`.

    A missing section is created at the end of the file, preceded by `comment` lines. An empty
    inline form (`key: {}` or `key: null`) is turned into a block section.
    """
    if not block.endswith("\n"):
        block += "\n"
    lines = doc.splitlines(keepends=True)
    start = _header_index(lines, key)
    if start is None:
        for i, line in enumerate(lines):
            if not re.match(rf"^{re.escape(key)}:", line):
                continue
            if not re.match(rf"^{re.escape(key)}:\s*(\{{\s*\}}|null|~)\s*(#.*)?$", line.rstrip("\n")):
                raise BlockEditError(f"'{key}:' 不是可以追加内容的写法（第 {i + 1} 行），请手工检查")
            lines[i], start = f"{key}:\n", i
            break
    if start is None:
        body = doc if doc.endswith("\n") or not doc else doc + "\n"
        return body + "\n" + comment + f"{key}:\n" + block
    last = start
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if not line.strip():
            continue
        if line[0] in " \t":
            last = i
            continue
        break  # the next top-level key or comment belongs to what follows
    if lines[last] and not lines[last].endswith("\n"):
        lines[last] += "\n"
    lines.insert(last + 1, block)
    return "".join(lines)


def append_example(doc: str, intent: str, example: str) -> str:
    """Add `- example` to the `examples: |` block of `- intent: <intent>` in Rasa NLU YAML.

    The block is created at the end of the file when the intent has none yet.
    """
    line_text = f"    - {example}\n"
    lines = doc.splitlines(keepends=True)
    head = re.compile(rf"^- intent:\s*{re.escape(intent)}\s*(#.*)?$")
    for i, line in enumerate(lines):
        if not head.match(line.rstrip("\n")):
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j >= len(lines) or not re.match(r"^  examples:\s*\|\s*$", lines[j].rstrip("\n")):
            raise BlockEditError(f"意图 {intent} 的 examples 不是 '  examples: |' 的写法（第 {j + 1} 行），请手工检查")
        last = j
        for k in range(j + 1, len(lines)):
            if lines[k].startswith("    ") and lines[k].strip():
                last = k
            elif lines[k].strip():
                break
        if not lines[last].endswith("\n"):
            lines[last] += "\n"
        lines.insert(last + 1, line_text)
        return "".join(lines)
    body = doc if doc.endswith("\n") or not doc else doc + "\n"
    return body + f"- intent: {intent}\n  examples: |\n" + line_text


def examples_of(block_text: Any) -> List[str]:
    """The example lines of a Rasa `examples: |` text."""
    if not isinstance(block_text, str):
        return []
    return [line.strip()[2:].strip() for line in block_text.splitlines()
            if line.strip().startswith("- ") and line.strip()[2:].strip()]


def append_phrasing(doc: str, question_id: str, phrasing: str) -> str:
    """Add `- "phrasing"` to the `phrasings:` list of the specific question `- id: <question_id>`
    in data/faq.yml (created after the `question:` line when the question has none yet)."""
    lines = doc.splitlines(keepends=True)
    head = re.compile(rf"^(\s*)- id:\s*['\"]?{re.escape(question_id)}['\"]?\s*(#.*)?$")
    for i, line in enumerate(lines):
        match = head.match(line.rstrip("\n"))
        if not match:
            continue
        key_indent = len(match.group(1)) + 2  # the item's keys line up after "- "
        end = i + 1  # the item runs until a line indented at or left of its dash
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) >= key_indent):
            end += 1
        keys = {lines[k].strip().split(":", 1)[0]: k for k in range(i + 1, end)
                if _indent(lines[k]) == key_indent and ":" in lines[k]}
        item = " " * (key_indent + 2) + "-" + scalar(phrasing, 0) + "\n"
        if "phrasings" not in keys:
            anchor = keys.get("question")
            if anchor is None:
                raise BlockEditError(f"问题 {question_id} 没有 question 字段（第 {i + 1} 行起），请手工检查")
            lines.insert(anchor + 1, " " * key_indent + "phrasings:\n" + item)
            return "".join(lines)
        start = keys["phrasings"]
        if lines[start].split(":", 1)[1].strip():
            raise BlockEditError(f"问题 {question_id} 的 phrasings 不是逐行列表的写法（第 {start + 1} 行），请手工检查")
        last = start
        for k in range(start + 1, end):
            if lines[k].strip() and _indent(lines[k]) > key_indent:
                last = k
            elif lines[k].strip():
                break
        if not lines[last].endswith("\n"):
            lines[last] += "\n"
        lines.insert(last + 1, item)
        return "".join(lines)
    raise BlockEditError(f"data/faq.yml 里没有问题 {question_id}")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))
