"""Owner-only files: conversations, tickets, password hashes, keys and logs are nobody else's.

The assistant's state lives in files of this checkout — `var/` (SQLite databases: transcripts,
tickets, agents' bcrypt hashes; the signing secret; rendered endpoint files), `logs/` and
`models/`. With the usual umask 022 they came out 0644 in 0755 folders, readable by every local
account. Every launcher now sets umask 077 (scripts/*.sh, and `bot …` itself through
`private_project()`), so new files are 0600 and new folders 0700, and at start the modes of what
an older run left behind are tightened. SQLite files get 0600 wherever their URL points
(`private_sqlite`), before SQLite creates them.

Symbolic links are never followed: a link (e.g. `models/` pointing at another checkout) is
someone's deliberate choice, and following links under `var/` could reach system files.
"""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Iterable, Optional

from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)

OWNER_ONLY_UMASK = 0o077
PRIVATE_DIRS = ("var", "logs", "models")
"""Folders of the project root that hold state: created 0700, everything in them owner-only."""
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def owner_only_umask() -> None:
    """Files this process (and its children) creates from now on: 0600 / folders 0700."""
    os.umask(OWNER_ONLY_UMASK)


def _strip_others(path: Path) -> bool:
    """Remove group/other bits from `path` (never through a symlink); True if it changed."""
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode) or not mode & 0o077:
            return False
        os.chmod(path, stat.S_IMODE(mode) & ~0o077)
        return True
    except FileNotFoundError:
        return False
    except OSError as exc:  # not ours (another owner): say so, the server still starts
        logger.warning("cannot make %s owner-only: %s", path, exc)
        return False


def private_tree(path: Path) -> int:
    """Make the folder `path` and everything below it owner-only; how many modes changed."""
    if path.is_symlink() or not path.is_dir():
        return 0
    changed = int(_strip_others(path))
    for folder, dirnames, filenames in os.walk(path):  # os.walk does not descend into links
        for name in dirnames + filenames:
            changed += _strip_others(Path(folder) / name)
    return changed


def private_file(path: Path) -> Path:
    """`path` exists, mode 0600 (created empty if missing; SQLite takes an empty file as new)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.close(fd)
    _strip_others(path)
    return path


def sqlite_path(url: str) -> Optional[Path]:
    """The file of a `sqlite:///…` URL, or None (other databases, in-memory SQLite)."""
    try:
        parsed = make_url(url)
    except Exception:  # not a URL SQLAlchemy knows: not ours to protect
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.database.startswith("file:"):  # URI filenames: leave them to SQLite
        return None
    return Path(parsed.database)


def private_sqlite(url: str) -> Optional[Path]:
    """Before SQLite opens a file database: the file (and its WAL/SHM/journal) is 0600.

    SQLite gives the WAL and SHM files the mode of the database file, so 0600 here holds for
    them too; existing ones of an older run are tightened."""
    path = sqlite_path(url)
    if path is None:
        return None
    private_file(path)
    for suffix in SQLITE_SIDE_FILES:
        _strip_others(path.with_name(path.name + suffix))
    return path


def private_project(root: Path, folders: Iterable[str] = PRIVATE_DIRS) -> int:
    """At the start of every `bot …` process: umask 077, `var/` and `logs/` exist (0700), and
    what is in `var/`, `logs/`, `models/` is owner-only. How many modes were tightened."""
    owner_only_umask()
    changed = 0
    for name in folders:
        folder = root / name
        if name != "models" and not folder.is_symlink():  # models/ is made by training
            try:
                folder.mkdir(mode=0o700, exist_ok=True)
            except OSError:  # a read-only checkout: nothing of ours is written there either
                continue
        changed += private_tree(folder)
    if changed:
        logger.info("made %d files/folders under %s owner-only", changed, root)
    return changed
