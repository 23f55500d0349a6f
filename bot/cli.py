"""`bot` command line: tools for support staff and developers."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bot", description="钱包小助手 tools")
    sub = parser.add_subparsers(dest="command", required=True)
    faq = sub.add_parser("faq", help="FAQ tools").add_subparsers(dest="faq_command", required=True)
    faq.add_parser("check", help="validate the FAQ against domain, NLU data and rules")
    from bot.faq.loop_cli import add_loop_commands, loop_command

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
    sub.add_parser("console", help="start the agent console (http://127.0.0.1:5006)")
    from bot.ops.notice_cli import add_status_parser, status_command

    add_status_parser(sub)
    args = parser.parse_args(argv)

    if args.command == "agents":
        return agents_command(args)
    if args.command == "status":
        return status_command(args)
    if args.command == "console":
        from bot.console.app import main as console_main

        sys.argv = sys.argv[:1]
        console_main()
        return 0

    if args.command == "faq" and args.faq_command != "check":
        return loop_command(args)
    if args.command == "faq" and args.faq_command == "check":
        from bot.faq.check import check_project
        from bot.paths import project_root

        problems = check_project(project_root())
        for problem in problems:
            print(f"ERROR {problem}")
        print("FAQ check: OK" if not problems else f"FAQ check: {len(problems)} problem(s)")
        return 1 if problems else 0
    if args.command == "eval":
        from bot.evaluation.run import main as eval_main

        return eval_main(args.tsv, args.model, args.out)
    return 2


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    import getpass

    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat: ") != first:
        raise ValueError("passwords differ")
    return first


def agents_command(args) -> int:
    from bot.handoff.agents import agent_store
    from bot.settings import handoff_settings

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


if __name__ == "__main__":
    sys.exit(main())
