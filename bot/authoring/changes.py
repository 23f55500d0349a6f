"""Versioned changes to the staff-edited files: add a training example, draft a topic, roll back.

Support leads turn unanswered questions into better answers without a developer. Every change
is recorded in the `faq_changes` table (who, when, what, and each file's text before and after),
so it can be listed and rolled back. Files are edited by inserting text blocks (comments and
layout of data/faq.yml survive) and re-parsed before anything is written; one lock file keeps
two staff members from interleaving edits.

Paths are relative to a project root (`bot.config.project_root()`, WALLET_PROJECT_ROOT), so tests
and tools can work on a copy of the project.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.errors import StaffError
from bot.faq import drafts as drafts_mod
from bot.faq.check import nlu_examples
from bot.faq.model import Faq, FaqError, Question, parse_faq
from bot.authoring.yaml_blocks import (BlockEditError, append_example, append_phrasing, append_to_section, examples_of,
                                       scalar)
from bot.db.models import FaqChange, iso
from bot.privacy.masker import mask
from bot.text import normalize_text
from bot.topics import ALL_INTENTS, FAQ_TOPICS

FAQ_FILE = "data/faq.yml"
STAFF_NLU_FILE = "data/nlu/staff_additions.yml"
EXAMPLE_TOPICS = FAQ_TOPICS + ("out_of_scope",)
"""Where staff may add examples: every FAQ topic, and out_of_scope ("not ours: hand off")."""
MAX_EXAMPLE_CHARS = 200
MAX_AUTHOR_CHARS = 64

STAFF_NLU_HEADER = """# 客服同事添加的训练例句（`bot faq add-example` 或坐席台「FAQ 改进」写入）。
# 每个话题一个 intent 块；可以手工修改，修改后运行 `make check`，重新训练后生效。
version: "3.1"
nlu:
"""
DRAFTS_COMMENT = """# 新话题草稿（`bot faq draft-topic` 或坐席台写入）：小助手还不会回答草稿，
# 需要开发同事在 domain.yml、训练数据和规则里加上这个话题后，才会移到 topics: 下上线。
"""
_ENTITY_MARKUP = re.compile(r"\][\(\{\[]")


class ChangeError(StaffError, ValueError):
    """A refused change to the FAQ files."""


@dataclass(frozen=True)
class Change:
    id: int
    author: str
    action: str
    summary: str
    files: Dict[str, Dict[str, Optional[str]]]
    created_at: Optional[dt.datetime]
    rolled_back_by: Optional[int]

    def as_dict(self, with_texts: bool = False) -> dict:
        out = {"id": self.id, "author": self.author, "action": self.action, "summary": self.summary,
               "files": sorted(self.files), "created_at": iso(self.created_at),
               "rolled_back_by": self.rolled_back_by}
        if with_texts:
            out["texts"] = self.files
        return out


def _author(by: object) -> str:
    if not isinstance(by, str) or not by.strip():
        raise ChangeError("请写明操作人（--by 姓名）")
    if len(by.strip()) > MAX_AUTHOR_CHARS:
        raise ChangeError(f"操作人名字太长（最多 {MAX_AUTHOR_CHARS} 字）")
    return by.strip()


def clean_example(text: object) -> str:
    """One line of user text, personal data masked, ready for a Rasa example line."""
    if not isinstance(text, str):
        raise ChangeError("例句必须是文字")
    line = re.sub(r"\s+", " ", mask(text).text).strip()
    if not line or not normalize_text(line):
        raise ChangeError("例句不能为空")
    if len(line) > MAX_EXAMPLE_CHARS:
        raise ChangeError(f"例句太长（最多 {MAX_EXAMPLE_CHARS} 字），请只保留问题本身")
    if _ENTITY_MARKUP.search(line):
        raise ChangeError("例句里不能有 ](、]{ 或 ][ 这样的写法（训练数据会把它当成实体标注）")
    return line


class FaqChanges:
    """The change log of one project's staff-edited files, in one database."""

    def __init__(self, root: Optional[Path] = None, db_url: Optional[str] = None) -> None:
        from bot.db.engine import engine_for
        from bot.config import project_root
        from bot.config import handoff_settings

        self.root = Path(root) if root else project_root()
        self.engine = engine_for(db_url or handoff_settings().database_url)

    # ---- reading -------------------------------------------------------------------------

    def _read(self, rel: str) -> Optional[str]:
        try:
            return (self.root / rel).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def _faq_raw(self, text: Optional[str]) -> dict:
        if text is None:
            raise ChangeError(f"{FAQ_FILE} 不存在", 500)
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ChangeError(f"{FAQ_FILE} 现在不是有效的 YAML，请先修好（make check）：{exc}", 409) from None
        return raw if isinstance(raw, dict) else {}

    def _owners(self) -> Dict[str, str]:
        """normalised example -> intent (every NLU file) or draft (data/faq.yml)."""
        problems: List[str] = []
        owners: Dict[str, str] = {}
        for intent, items in nlu_examples(self.root, problems).items():
            for text, _ in items:
                owners.setdefault(normalize_text(text), intent)
        try:
            faq_raw = self._faq_raw(self._read(FAQ_FILE))
        except ChangeError:
            faq_raw = {}  # a broken FAQ file must not block adding a training example
        for draft in drafts_mod.parse_drafts(faq_raw):
            for example in draft.examples:
                owners.setdefault(normalize_text(example), f"draft {draft.name}")
        return owners

    # ---- writing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock_dir = self.root / "var"
        lock_dir.mkdir(parents=True, exist_ok=True)
        with open(lock_dir / "faq_changes.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write(self, rel: str, text: Optional[str]) -> None:
        path = self.root / rel
        if text is None:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)  # readers (the action server) see the old or the new file, never half

    def _record(self, author: str, action: str, summary: str,
                compute: Callable[[Dict[str, Optional[str]]], Dict[str, Optional[str]]],
                rels: Tuple[str, ...], mark: Optional[Callable[[Session, int], None]] = None) -> Change:
        """Under the lock: read `rels`, compute their new texts, write them, store the change."""
        with self._locked():
            before = {rel: self._read(rel) for rel in rels}
            after = compute(before)
            changed = {rel: text for rel, text in after.items() if text != before.get(rel)}
            if not changed:
                raise ChangeError("没有需要修改的内容", 409)
            for rel, text in changed.items():
                self._write(rel, text)
            try:
                with Session(self.engine, future=True) as s, s.begin():
                    row = FaqChange(author=author, action=action, summary=summary,
                                    files={rel: {"before": before.get(rel), "after": text}
                                           for rel, text in changed.items()})
                    s.add(row)
                    s.flush()
                    if mark:
                        mark(s, row.id)
                    return _as_change(row)
            except Exception:
                for rel in changed:  # the files must not run ahead of the history
                    self._write(rel, before.get(rel))
                raise

    # ---- operations ----------------------------------------------------------------------

    def add_example(self, topic: str, text: str, by: str) -> Change:
        """Add a user's question (masked) as a training example of an existing topic."""
        author = _author(by)
        if topic not in EXAMPLE_TOPICS:
            raise ChangeError(f"没有这个话题：{topic}。可选：{', '.join(EXAMPLE_TOPICS)}"
                              "（新话题请用「新话题草稿」）")
        example = clean_example(text)
        key = normalize_text(example)

        def compute(before: Dict[str, Optional[str]]) -> Dict[str, Optional[str]]:
            owner = self._owners().get(key)
            if owner == topic:
                raise ChangeError(f"话题 {topic} 已经有这个例句了", 409)
            if owner:
                raise ChangeError(f"这个例句已属于 {owner}，同一句话不能同时训练给两个话题", 409)
            doc = before[STAFF_NLU_FILE] or STAFF_NLU_HEADER
            try:
                new = append_example(doc, topic, example)
            except BlockEditError as err:
                raise ChangeError(f"{STAFF_NLU_FILE}: {err}", 409) from None
            _verify_example(new, doc, topic, example)
            return {STAFF_NLU_FILE: new}

        return self._record(author, "add_example", f"为话题 {topic} 添加例句：{example}", compute,
                            (STAFF_NLU_FILE,))

    def add_phrasing(self, question_id: str, text: str, by: str) -> Change:
        """Add a user's wording (masked) to a specific question of data/faq.yml: answered with
        that question at the FAQ's next hot reload, no retraining."""
        author = _author(by)
        phrasing = clean_example(text)
        key = normalize_text(phrasing)

        def compute(before: Dict[str, Optional[str]]) -> Dict[str, Optional[str]]:
            doc = before[FAQ_FILE]
            try:
                old = parse_faq(self.root / FAQ_FILE, self._faq_raw(doc))
            except FaqError as err:
                raise ChangeError(f"{FAQ_FILE} 现在通不过检查，请先修好（make check）：{err.where}: {err.problem}",
                                  409) from None
            question = old.question(question_id)
            if question is None:
                raise ChangeError(f"没有这个具体问题：{question_id[:80]}", 404)
            owner = _wording_owners(old).get(key)
            if owner is not None and owner.id == question_id:
                raise ChangeError(f"不能添加：问题「{question.question}」已经有这个问法了", 409)
            if owner is not None:
                raise ChangeError(f"不能添加：这个问法已属于问题「{owner.question}」（{owner.id}），"
                                  "同一句话不能同时属于两个问题", 409)
            trained = self._owners().get(key)
            if trained is not None and trained != question.topic:
                raise ChangeError(f"不能添加：这个问法已是 {trained} 的训练例句，不能再给话题 {question.topic} 的问题", 409)
            try:
                new = append_phrasing(doc, question_id, phrasing)
            except BlockEditError as err:
                raise ChangeError(f"{FAQ_FILE}: {err}", 409) from None
            try:
                updated = parse_faq(self.root / FAQ_FILE, self._faq_raw(new))
            except FaqError as err:  # e.g. the wording already belongs to another question
                raise ChangeError(f"不能添加：{err.problem}", 409) from None
            if updated.question(question_id).phrasings != [*question.phrasings, phrasing]:
                raise ChangeError(f"{FAQ_FILE} 的格式被手工改动过，无法安全追加说法，请手工检查", 409)
            return {FAQ_FILE: new}

        try:  # for the history only: compute() checks the question again under the lock
            known = parse_faq(self.root / FAQ_FILE, self._faq_raw(self._read(FAQ_FILE))).question(question_id)
        except (ChangeError, FaqError):
            known = None
        label = f"{question_id}（{known.question}）" if known else question_id
        return self._record(author, "add_phrasing", f"为问题 {label} 添加说法：{phrasing}", compute, (FAQ_FILE,))

    def draft_topic(self, name: str, title: str, answer: str, examples: List[str], by: str) -> Change:
        """Write a new topic as a draft into data/faq.yml (not served until a developer adds it)."""
        author = _author(by)
        name = (name or "").strip() if isinstance(name, str) else ""
        if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
            raise ChangeError("examples 必须是例句列表")
        cleaned = [clean_example(e) for e in examples if isinstance(e, str) and e.strip()]
        title = title.strip() if isinstance(title, str) else ""
        answer = answer.strip() if isinstance(answer, str) else ""
        entry = {"title": title, "answer": answer, "examples": cleaned, "by": author,
                 "created": dt.date.today().isoformat()}

        def compute(before: Dict[str, Optional[str]]) -> Dict[str, Optional[str]]:
            doc = before[FAQ_FILE]
            raw = self._faq_raw(doc)
            taken = set(ALL_INTENTS) | set(_domain_intents(self.root)) | set(drafts_mod.raw_drafts(raw))
            problems = drafts_mod.draft_problems(name, entry, taken, self._owners())
            if problems:
                raise ChangeError("；".join(p.split(": ", 1)[-1] for p in problems))
            block = _draft_block(name, entry)
            try:
                new = append_to_section(doc, drafts_mod.DRAFTS_KEY, block, DRAFTS_COMMENT)
            except BlockEditError as err:
                raise ChangeError(f"{FAQ_FILE}: {err}", 409) from None
            _verify_draft(new, raw, name, entry, self.root / FAQ_FILE)
            return {FAQ_FILE: new}

        return self._record(author, "draft_topic", f"新话题草稿 {name}：{title}", compute, (FAQ_FILE,))

    def history(self, limit: int = 50) -> List[Change]:
        with Session(self.engine, future=True) as s:
            rows = s.execute(select(FaqChange).order_by(FaqChange.id.desc()).limit(limit)).scalars()
            return [_as_change(row) for row in rows]

    def get(self, change_id: int) -> Change:
        with Session(self.engine, future=True) as s:
            row = s.get(FaqChange, change_id)
            if row is None:
                raise ChangeError(f"没有编号为 {change_id} 的变更", 404)
            return _as_change(row)

    def rollback(self, change_id: int, by: str, force: bool = False) -> Change:
        """Restore the texts from before change `change_id`, recorded as a new change.

        Refused when a file changed since (another change or a hand edit would be lost),
        unless `force`; the overwritten texts are then in the new change's "before".
        """
        author = _author(by)
        target = self.get(change_id)
        if target.rolled_back_by:
            raise ChangeError(f"变更 #{change_id} 已经被 #{target.rolled_back_by} 回滚过了", 409)
        rels = tuple(sorted(target.files))

        def compute(before: Dict[str, Optional[str]]) -> Dict[str, Optional[str]]:
            moved = [rel for rel in rels if before[rel] != target.files[rel].get("after")]
            if moved and not force:
                raise ChangeError(
                    f"{', '.join(moved)} 在变更 #{change_id} 之后又被修改过，回滚会丢掉这些修改；"
                    "确认要覆盖请加 --force（被覆盖的内容会记在这次回滚里，仍可再回滚）", 409)
            restored = {rel: target.files[rel].get("before") for rel in rels}
            if FAQ_FILE in restored and restored[FAQ_FILE] is not None:
                _validate_faq_text(restored[FAQ_FILE], self.root / FAQ_FILE)
            return restored

        def mark(s: Session, new_id: int) -> None:
            s.get(FaqChange, change_id).rolled_back_by = new_id
            undone = s.execute(select(FaqChange).where(FaqChange.rolled_back_by == change_id)).scalars()
            for row in undone:  # rolling back a rollback re-applies what it had undone
                row.rolled_back_by = None

        return self._record(author, "rollback", f"回滚变更 #{change_id}（{target.summary}）", compute, rels, mark)


def _as_change(row: FaqChange) -> Change:
    return Change(row.id, row.author, row.action, row.summary, dict(row.files or {}), row.created_at,
                  row.rolled_back_by)


def _wording_owners(faq: Faq) -> Dict[str, Question]:
    """normalised question or phrasing -> the specific question it belongs to."""
    return {normalize_text(text): q for topic in faq.topics.values() for q in topic.questions
            for text in (q.question, *q.phrasings)}


def _domain_intents(root: Path) -> List[str]:
    try:
        domain = yaml.safe_load((root / "domain.yml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []
    intents = domain.get("intents") or []
    return [i if isinstance(i, str) else next(iter(i)) for i in intents if isinstance(i, (str, dict)) and i]


def _draft_block(name: str, entry: dict) -> str:
    lines = [f"\n  {name}:\n",
             f"    title:{scalar(entry['title'], 6)}\n",
             f"    answer:{scalar(entry['answer'], 6)}\n",
             "    examples:\n"]
    lines += [f"      -{scalar(e, 8)}\n" for e in entry["examples"]]
    lines += [f"    by:{scalar(entry['by'], 6)}\n", f"    created: \"{entry['created']}\"\n"]
    return "".join(lines)


def _validate_faq_text(text: str, path: Path) -> dict:
    try:
        raw = yaml.safe_load(text)
        parse_faq(path, raw)
    except yaml.YAMLError as exc:
        raise ChangeError(f"修改后的 {FAQ_FILE} 不是有效的 YAML：{exc}", 500) from None
    except FaqError as err:
        raise ChangeError(f"修改后的 {FAQ_FILE} 通不过检查：{err.where}: {err.problem}", 409) from None
    return raw


def _verify_draft(new: str, old_raw: dict, name: str, entry: dict, path: Path) -> None:
    """The new file parses, holds exactly the intended draft, and nothing else moved."""
    raw = _validate_faq_text(new, path)
    got = drafts_mod.raw_drafts(raw).get(name)
    if not isinstance(got, dict) or {k: (v.strip() if isinstance(v, str) else v) for k, v in got.items()} != entry:
        raise ChangeError(f"{FAQ_FILE} 的 drafts: 部分写法特殊，无法安全追加，请手工检查", 409)
    rest_new = {k: v for k, v in raw.items() if k != drafts_mod.DRAFTS_KEY}
    rest_old = {k: v for k, v in old_raw.items() if k != drafts_mod.DRAFTS_KEY}
    others_new = {k: v for k, v in drafts_mod.raw_drafts(raw).items() if k != name}
    if rest_new != rest_old or others_new != drafts_mod.raw_drafts(old_raw):
        raise ChangeError(f"{FAQ_FILE} 的结构无法安全追加草稿，请手工检查", 409)


def _verify_example(new: str, old: str, topic: str, example: str) -> None:
    """The NLU file parses, the topic's block ends with the example, and nothing else moved."""
    def blocks(text: str) -> Dict[str, List[str]]:
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ChangeError(f"{STAFF_NLU_FILE} 不是有效的 YAML，请先修好（make check）：{exc}", 409) from None
        out: Dict[str, List[str]] = {}
        for block in data.get("nlu") or []:
            if isinstance(block, dict) and "intent" in block:
                out.setdefault(block["intent"], []).extend(examples_of(block.get("examples")))
        return out

    before, after = blocks(old), blocks(new)
    expected = {**before, topic: before.get(topic, []) + [example]}
    if after != expected:
        raise ChangeError(f"{STAFF_NLU_FILE} 的格式被手工改动过，无法安全追加例句，请手工检查", 409)
