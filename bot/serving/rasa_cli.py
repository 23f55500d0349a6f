"""The Rasa entry point of every server we start: `bot rasa run …` is `rasa run …` with our
Rasa patches installed first (bot/serving/patches.py: refused, with a warning, on a Rasa
version they were not written for) and skops imported before TensorFlow (early_imports.py:
~13 s of every start).

Secrets reach Rasa inside this process, never on a command line (/proc/<pid>/cmdline is readable
by every local account; Rasa gets its arguments from `sys.argv`, which we rewrite here without
changing what /proc shows):

- `--wallet-jwt` (ours): Rasa's HTTP API requires our JWT; the secret is derived here from the
  installation's secret (bot/security/tokens.py) and handed to Rasa as `--jwt-secret`.
- `run`, `shell`, `interactive`: when the endpoints file has an action server without a token,
  Rasa reads a copy with the action server token added (bot/security/action_auth.py), written
  0600 to var/run/endpoints.<pid>.yml and removed when the process ends.
"""
from __future__ import annotations

import atexit
import logging
import os
import sys
from pathlib import Path
from typing import List, Optional

from bot.serving.early_imports import import_skops

logger = logging.getLogger(__name__)

OUR_JWT_FLAG = "--wallet-jwt"
SERVING_COMMANDS = ("run", "shell", "interactive")
"""Rasa commands that call the action server (with the endpoints file)."""
DEFAULT_ENDPOINTS = "endpoints.yml"


def rendered_dir() -> Path:
    from bot.config import ROOT

    return ROOT / "var" / "run"


def _option(args: List[str], name: str) -> Optional[int]:
    """Index of `name` (`--x v` or `--x=v`) in `args`, or None."""
    for index, arg in enumerate(args):
        if arg == name or arg.startswith(name + "="):
            return index
    return None


def _remove_stale(folder: Path) -> None:
    """Rendered files of processes that are gone (killed before they could remove their own)."""
    for path in folder.glob("endpoints.*.yml"):
        pid = path.name.split(".")[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            path.unlink(missing_ok=True)


def with_action_token(args: List[str]) -> List[str]:
    """`args` with `--endpoints` pointing at a rendered copy that carries the action token."""
    from bot.security.action_auth import render_endpoints
    from bot.security.tokens import action_token

    index = _option(args, "--endpoints")
    if index is None:
        source = DEFAULT_ENDPOINTS  # what Rasa reads when no --endpoints is given
    elif "=" in args[index]:
        source = args[index].split("=", 1)[1]
    elif index + 1 < len(args):
        source = args[index + 1]
    else:
        return args  # Rasa reports the missing value
    if not Path(source).is_file():
        return args
    folder = rendered_dir()
    if folder.is_dir():
        _remove_stale(folder)
    dest = render_endpoints(Path(source), folder / f"endpoints.{os.getpid()}.yml", action_token())
    if dest is None:
        return args
    owner = os.getpid()
    atexit.register(lambda: os.getpid() == owner and dest.unlink(missing_ok=True))  # not in forked workers
    if index is None:
        return [*args, "--endpoints", str(dest)]
    if "=" in args[index]:
        return [*args[:index], f"--endpoints={dest}", *args[index + 1:]]
    return [*args[:index + 1], str(dest), *args[index + 2:]]


def rasa_argv(argv: List[str]) -> List[str]:
    """Rasa's own arguments from ours (see the module docstring)."""
    args = list(argv)
    if args[:2] == ["run", "actions"]:
        raise SystemExit("用 `python -m bot actions` 启动动作服务器：它只接受带令牌的 Rasa 请求 "
                         "(`rasa run actions` would answer anyone on this machine)")
    if OUR_JWT_FLAG in args:
        from bot.security.tokens import jwt_secret

        args.remove(OUR_JWT_FLAG)
        args += ["--jwt-secret", jwt_secret(), "--jwt-method", "HS256"]
    elif _option(args, "--jwt-secret") is not None or _option(args, "--auth-token") is not None:
        logger.warning("a secret on the command line is readable by every local account "
                       "(/proc/<pid>/cmdline): use %s instead", OUR_JWT_FLAG)
    if args and args[0] in SERVING_COMMANDS:
        args = with_action_token(args)
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = rasa_argv(sys.argv[1:] if argv is None else argv)
    import_skops()
    from bot.serving.patches import install

    install()
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *args]
    return rasa_main()


if __name__ == "__main__":
    sys.exit(main())
