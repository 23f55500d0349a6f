"""The Rasa entry point of every server we start: `bot rasa run …` is `rasa run …` with our
Rasa patches installed first (bot/serving/patches.py: refused, with a warning, on a Rasa
version they were not written for) and skops imported before TensorFlow (early_imports.py:
~13 s of every start).

Secrets reach Rasa inside this process, never on a command line (/proc/<pid>/cmdline is readable
by every local account; Rasa gets its arguments from `sys.argv`, which we rewrite here without
changing what /proc shows):

- `--wallet-jwt` (ours): Rasa's HTTP API requires our JWT; the secret is derived here from the
  installation's secret (bot/security/tokens.py) and handed to Rasa as `--jwt-secret`.
- `run`, `shell`, `interactive`: Rasa reads a copy of the endpoints file with the action server
  token added and `${ACTION_PORT}` replaced by ACTION_PORT (bot/serving/run_files.py), written
  0600 to var/run/endpoints.<pid>.yml and removed when the process ends.

Channels and ports:

- `run`, `shell`: Rasa reads a copy of credentials.yml with the channels switched on by their
  variables (bot/serving/channel_switch.py), var/run/credentials.<pid>.yml; a channel configured
  in part stops the start with the names of the missing variables.
- `shell` is `run` with our channels plus the terminal channel (bot/channels/terminal.py):
  Rasa's own shell talks through its `cmdline` channel, which knows nothing of the hand-off
  relay; ours goes through our REST channel like every other client. Same options as
  `rasa shell` (`--conversation-id`, `-m`, `--endpoints`, `-p` …); deprecation and Rasa's user
  warnings are filtered in this process (bot/serving/quiet.py). `shell nlu` stays Rasa's.
- without `--port`, `run` and `shell` listen on RASA_PORT (bot/config.py; default 5005).
"""
from __future__ import annotations

import argparse
import atexit
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from bot.serving.early_imports import import_skops

logger = logging.getLogger(__name__)

OUR_JWT_FLAG = "--wallet-jwt"
SERVING_COMMANDS = ("run", "shell", "interactive")
"""Rasa commands that call the action server (with the endpoints file)."""
DEFAULT_ENDPOINTS = "endpoints.yml"
DEFAULT_CREDENTIALS = "credentials.yml"
REST_CHANNEL = "bot.channels.rest.WalletRestInput"
TERMINAL_CHANNEL = "bot.channels.terminal.WalletTerminalInput"
RENDERED = ("endpoints", "credentials")


def rendered_dir() -> Path:
    from bot.config import ROOT

    return ROOT / "var" / "run"


def _option(args: List[str], name: str) -> Optional[int]:
    """Index of `name` (`--x v` or `--x=v`) in `args`, or None."""
    for index, arg in enumerate(args):
        if arg == name or arg.startswith(name + "="):
            return index
    return None


def _value(args: List[str], name: str) -> Tuple[Optional[int], Optional[str]]:
    """(index, value) of option `name`; value None when the option or its value is missing."""
    index = _option(args, name)
    if index is None:
        return None, None
    if "=" in args[index]:
        return index, args[index].split("=", 1)[1]
    return index, args[index + 1] if index + 1 < len(args) else None


def _with_value(args: List[str], name: str, index: Optional[int], value: str) -> List[str]:
    if index is None:
        return [*args, name, value]
    if "=" in args[index]:
        return [*args[:index], f"{name}={value}", *args[index + 1:]]
    return [*args[:index + 1], value, *args[index + 2:]]


def _remove_stale(folder: Path) -> None:
    """Rendered files of processes that are gone (killed before they could remove their own)."""
    for kind in RENDERED:
        for path in folder.glob(f"{kind}.*.yml"):
            pid = path.name.split(".")[1]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                path.unlink(missing_ok=True)


def _rendered_path(kind: str) -> Path:
    folder = rendered_dir()
    if folder.is_dir():
        _remove_stale(folder)
    return folder / f"{kind}.{os.getpid()}.yml"


def _removed_at_exit(dest: Path) -> None:
    owner = os.getpid()
    atexit.register(lambda: os.getpid() == owner and dest.unlink(missing_ok=True))  # not in forked workers


def with_action_token(args: List[str]) -> List[str]:
    """`args` with `--endpoints` pointing at a rendered copy that carries the action token and
    the action server's port."""
    from bot.config import settings
    from bot.security.tokens import action_token
    from bot.serving.run_files import render_endpoints

    index, source = _value(args, "--endpoints")
    if index is None:
        source = DEFAULT_ENDPOINTS  # what Rasa reads when no --endpoints is given
    elif source is None:
        return args  # Rasa reports the missing value
    if not Path(source).is_file():
        return args
    dest = render_endpoints(Path(source), _rendered_path("endpoints"), action_token(), settings().action_port)
    if dest is None:
        return args
    _removed_at_exit(dest)
    return _with_value(args, "--endpoints", index, str(dest))


def with_channels(args: List[str], extra: Optional[Dict[str, Any]] = None) -> List[str]:
    """`args` with `--credentials` pointing at a copy with the channels that are switched on
    (and `extra`); SystemExit naming the missing variables when a channel is configured in part."""
    from bot.serving.channel_switch import ChannelConfigError
    from bot.serving.run_files import render_credentials

    index, given = _value(args, "--credentials")
    if index is not None and (given is None or not Path(given).is_file()):
        return args  # Rasa reports it
    source = Path(given) if given else Path(DEFAULT_CREDENTIALS)
    try:
        dest = render_credentials(source if source.is_file() else None, _rendered_path("credentials"),
                                  os.environ, extra)
    except ChannelConfigError as err:
        raise SystemExit(str(err)) from None
    if dest is None:
        return args
    _removed_at_exit(dest)
    return _with_value(args, "--credentials", index, str(dest))


def _has_port(args: List[str]) -> bool:
    return any(a in ("-p", "--port") or a.startswith("--port=") or (a.startswith("-p") and not a.startswith("--"))
               for a in args)


def with_port(args: List[str]) -> List[str]:
    """No `--port`: RASA_PORT's (Rasa's own default is the same 5005)."""
    from bot.config import DEFAULT_RASA_PORT, settings

    port = settings().rasa_port
    if _has_port(args) or port == DEFAULT_RASA_PORT:
        return args
    return [*args, "--port", str(port)]


def shell_as_run(args: List[str]) -> Optional[Tuple[List[str], Dict[str, Any]]]:
    """`shell …` as `run …` and the terminal channel's block; None when Rasa's own shell should
    run (`shell nlu`, `shell --help`)."""
    from bot.config import settings

    rest = args[1:]
    if rest[:1] == ["nlu"] or "-h" in rest or "--help" in rest:
        return None
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--conversation-id", default=None)
    parser.add_argument("--connector", default=None)  # Rasa's shell ignores it too
    parser.add_argument("-i", "--interface", default="0.0.0.0")
    parser.add_argument("-p", "--port", type=int, default=None)
    known, others = parser.parse_known_args(rest)
    port = known.port or settings().rasa_port
    host = known.interface
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"  # a trusted back end on this machine (bot/security/clients.py)
    elif ":" in host:
        host = f"[{host}]"
    terminal = {"server_url": f"http://{host}:{port}",
                "conversation_id": known.conversation_id or uuid.uuid4().hex}
    return ["run", *others, "--interface", known.interface, "--port", str(port)], terminal


def rasa_argv(argv: List[str]) -> List[str]:
    """Rasa's own arguments from ours (see the module docstring)."""
    args = list(argv)
    if args[:2] == ["run", "actions"]:
        raise SystemExit("用 `python -m bot actions` 启动动作服务器：它只接受带令牌的 Rasa 请求 "
                         "(`rasa run actions` would answer anyone on this machine)")
    terminal = None
    if args[:1] == ["shell"]:
        shell = shell_as_run(args)
        if shell is not None:
            args, terminal = shell
    if OUR_JWT_FLAG in args:
        from bot.security.tokens import jwt_secret

        args.remove(OUR_JWT_FLAG)
        args += ["--jwt-secret", jwt_secret(), "--jwt-method", "HS256"]
    elif _option(args, "--jwt-secret") is not None or _option(args, "--auth-token") is not None:
        logger.warning("a secret on the command line is readable by every local account "
                       "(/proc/<pid>/cmdline): use %s instead", OUR_JWT_FLAG)
    if args and args[0] in SERVING_COMMANDS:
        args = with_action_token(args)
    if args[:1] == ["run"] and args[1:2] != ["actions"]:
        args = with_port(with_channels(args, {REST_CHANNEL: None, TERMINAL_CHANNEL: terminal} if terminal else None))
    return args


def main(argv: Optional[List[str]] = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["shell"]:
        from bot.serving.quiet import quiet_warnings

        quiet_warnings()
    import_skops()  # first: rasa_argv may import channel classes (and so TensorFlow)
    args = rasa_argv(given)
    from bot.serving.patches import install

    install()
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *args]
    return rasa_main()


if __name__ == "__main__":
    sys.exit(main())
