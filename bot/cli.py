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
    ev = sub.add_parser("eval", help="evaluate the trained model on a labelled TSV")
    ev.add_argument("tsv", nargs="?", default=None)
    ev.add_argument("--model", default="models/wallet.tar.gz")
    ev.add_argument("--out", default="reports")
    args = parser.parse_args(argv)

    if args.command == "faq" and args.faq_command == "check":
        from bot.faq.check import check_project

        problems = check_project()
        for problem in problems:
            print(f"ERROR {problem}")
        print("FAQ check: OK" if not problems else f"FAQ check: {len(problems)} problem(s)")
        return 1 if problems else 0
    if args.command == "eval":
        from bot.evaluation.run import main as eval_main

        return eval_main(args.tsv, args.model, args.out)
    return 2


if __name__ == "__main__":
    sys.exit(main())
