"""One source for the ports (issue 17, problem 3): RASA_PORT, ACTION_PORT and CONSOLE_PORT reach
every file and process that needs them (bot/config.py). endpoints.yml names `${ACTION_PORT}`
and every `bot rasa` process renders its own copy (bot/serving/run_files.py), so a second
instance's Rasa calls its own action server, not whatever listens on 5055."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from bot.config import reload_settings, settings
from bot.serving import rasa_cli

ROOT = Path(__file__).resolve().parent.parent

RENDER = """
import json, sys
from pathlib import Path
from bot.serving.rasa_cli import rasa_argv
args = rasa_argv(["run", "--endpoints", "endpoints.yml"])
path = Path(args[args.index("--endpoints") + 1])
print(json.dumps({"path": str(path), "text": path.read_text(encoding="utf-8")}))
sys.stdout.flush()
sys.stdin.read()  # both processes alive at once: two files side by side
"""


def test_two_action_ports_render_two_endpoint_files_each_pointing_at_its_own_port():
    env = {k: v for k, v in os.environ.items() if k not in ("ACTION_PORT", "RASA_PORT")}
    procs = [subprocess.Popen([sys.executable, "-c", RENDER], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env={**env, "ACTION_PORT": port, "PYTHONPATH": str(ROOT)}, text=True)
             for port in ("6101", "6202")]
    try:
        rendered = [json.loads(proc.stdout.readline()) for proc in procs]
        paths = [Path(r["path"]) for r in rendered]
        assert paths[0] != paths[1] and all(p.exists() for p in paths)
        for port, r in zip(("6101", "6202"), rendered):
            action = yaml.safe_load(r["text"])["action_endpoint"]
            assert action["url"] == f"http://127.0.0.1:{port}/webhook"
            assert action["token"]  # and the action server token, as before
        assert "${ACTION_PORT}" in (ROOT / "endpoints.yml").read_text(encoding="utf-8")  # the file itself unchanged
    finally:
        for proc in procs:
            proc.communicate("", timeout=30)
    assert not any(p.exists() for p in paths)  # each removed when its process ended


def test_without_action_port_the_default_5055(tmp_path, monkeypatch):
    monkeypatch.setattr(rasa_cli, "rendered_dir", lambda: tmp_path / "run")
    monkeypatch.delenv("ACTION_PORT", raising=False)
    reload_settings()
    args = rasa_cli.rasa_argv(["run", "--endpoints", str(ROOT / "endpoints.yml")])
    config = yaml.safe_load(Path(args[args.index("--endpoints") + 1]).read_text(encoding="utf-8"))
    assert config["action_endpoint"]["url"] == "http://127.0.0.1:5055/webhook"


def test_rasa_port_reaches_rasa_the_shell_and_the_console(tmp_path, monkeypatch):
    monkeypatch.setattr(rasa_cli, "rendered_dir", lambda: tmp_path / "run")
    monkeypatch.setenv("RASA_PORT", "6303")
    monkeypatch.setenv("ACTION_PORT", "6304")
    monkeypatch.setenv("CONSOLE_PORT", "6305")
    monkeypatch.delenv("WALLET_RASA_URL", raising=False)
    try:
        reload_settings()
        assert settings().handoff.rasa_url == "http://127.0.0.1:6303"  # where the console calls Rasa
        assert (settings().action_port, settings().console_port) == (6304, 6305)  # bot actions, bot console
        args = rasa_cli.rasa_argv(["run", "--enable-api"])
        assert args[args.index("--port") + 1] == "6303"
        assert rasa_cli.rasa_argv(["run", "-p", "7000"]).count("--port") == 0  # an explicit port wins
        args = rasa_cli.rasa_argv(["shell", "-m", "models/wallet.tar.gz"])
        credentials = yaml.safe_load(Path(args[args.index("--credentials") + 1]).read_text(encoding="utf-8"))
        assert args[0] == "run" and args[args.index("--port") + 1] == "6303"
        assert credentials[rasa_cli.TERMINAL_CHANNEL]["server_url"] == "http://127.0.0.1:6303"
    finally:
        monkeypatch.undo()
        reload_settings()


def test_nothing_else_names_the_default_ports():
    """The defaults live in bot/config.py (and scripts/run.sh's fallbacks): no other file of the
    project hard-codes 5005/5055/5006 for a process to use."""
    offenders = []
    for path in [*ROOT.glob("bot/**/*.py"), ROOT / "endpoints.yml", ROOT / "assistant.yml", ROOT / "credentials.yml"]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#")[0] if path.suffix != ".py" else line
            if any(f":{port}" in code or f"= {port}" in code for port in ("5005", "5055", "5006")):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    allowed = {"bot/config.py"}
    assert [o for o in offenders if o.split(":")[0] not in allowed] == []
