"""`bot`: the one command line of the project, for support staff, operators and developers.

Staff and operators: `bot faq …`, `bot status …`, `bot agents …`, `bot console`, `bot report`,
`bot eval`. Running Rasa: `bot rasa run …` (= `rasa run …` with our patches installed, the
channels credentials.yml switches on), `bot rasa shell …` (the terminal chat, through the hand-off flow),
`bot actions` (the action server, answering only our Rasa).
Developers: `bot simulate`, `bot bench`, `bot scale`, `bot token`, `bot privacy-report`.
`python -m bot …` is the same command.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

# Commands that hand their arguments to a module's own `main(argv)` (each parses its own).
DELEGATED = {
    "rasa": ("bot.serving.rasa_cli", "Rasa's own command line with our patches (bot rasa run|shell …; shell: our terminal channel)"),
    "console": ("bot.console.app", "start the agent console (port CONSOLE_PORT, default 5006)"),
    "actions": ("bot.serving.action_server", "the action server for rasa shell / WALLET_ACTIONS=server (token required)"),
    "report": ("bot.insights.report", "the support lead's dashboard as HTML (reports/dashboard/)"),
    "simulate": ("bot.devtools.simulation.simulate", "a simulated day of traffic into a tracker store"),
    "bench": ("bot.devtools.bench.run", "ours vs stock `rasa init` vs scale-out, same run"),
    "scale": ("bot.devtools.cluster", "nginx before N Rasa servers, PostgreSQL + Redis"),
    "token": ("bot.security.tokens", "print the JWT secret or an API token (jwt-secret|api-token)"),
    "privacy-report": ("bot.privacy.metrics", "the masker's precision and recall on the labelled corpus"),
    "audit-report": ("bot.security.audit_report", "summarise pip-audit's report (make audit)"),
    "model-fingerprint": ("bot.training.inputs", "fingerprint of the model's training inputs (make train)"),
    "retrain-job": ("bot.training.retrain", "run a queued retraining job (started by `bot faq retrain`)"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bot", description="钱包小助手 tools")
    sub = parser.add_subparsers(dest="command", required=True)
    faq = sub.add_parser("faq", help="FAQ tools").add_subparsers(dest="faq_command", required=True)
    faq.add_parser("check", help="validate the FAQ against domain, NLU data and rules")
    from bot.authoring.cli import add_loop_commands

    add_loop_commands(faq)
    ev = sub.add_parser("eval", help="evaluate the trained model on a labelled TSV")
    ev.add_argument("tsv", nargs="?", default=None)
    ev.add_argument("--model", default="models/wallet.tar.gz")
    ev.add_argument("--out", default="reports")
    agents = sub.add_parser("agents", help="support agents of the console").add_subparsers(
        dest="agents_command", required=True)
    add = agents.add_parser("add", help="create an agent (asks for the password)")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    pw = agents.add_parser("passwd", help="set an agent's password")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true")
    agents.add_parser("list", help="list agents")
    from bot.notices.cli import add_status_parser

    add_status_parser(sub)
    for name, (_, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    from bot.config import ROOT
    from bot.security.file_modes import private_project

    private_project(ROOT)  # umask 077; var/, logs/, models/ owner-only (docs/trust.md)
    if argv and argv[0] in DELEGATED:
        module = importlib.import_module(DELEGATED[argv[0]][0])
        return module.main(argv[1:]) or 0
    args = _parser().parse_args(argv)
    if args.command == "agents":
        return agents_command(args)
    if args.command == "status":
        from bot.notices.cli import status_command

        return status_command(args)
    if args.command == "faq" and args.faq_command == "check":
        return faq_check()
    if args.command == "faq":
        from bot.authoring.cli import loop_command

        return loop_command(args)
    if args.command == "eval":
        from bot.training.evaluate import main as eval_main

        return eval_main(args.tsv, args.model, args.out)
    return 2


def faq_check() -> int:
    from bot.config import project_root
    from bot.faq.check import check_project

    problems = check_project(project_root())
    for problem in problems:
        print(f"ERROR {problem}")
    print("FAQ check: OK" if not problems else f"FAQ check: {len(problems)} problem(s)")
    return 1 if problems else 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    import getpass

    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat: ") != first:
        raise ValueError("passwords differ")
    return first


def agents_command(args) -> int:
    from bot.config import handoff_settings
    from bot.handoff.agents import agent_store

    store = agent_store(handoff_settings().database_url)
    try:
        if args.agents_command == "add":
            agent = store.add(args.name, _read_password(args.password_stdin))
            print(f"agent '{agent['name']}' created")
        elif args.agents_command == "passwd":
            store.set_password(args.name, _read_password(args.password_stdin))
            print(f"password of '{args.name}' changed")
        else:
            for agent in store.list():
                print(agent["name"] + ("" if agent["active"] else " (inactive)"))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
