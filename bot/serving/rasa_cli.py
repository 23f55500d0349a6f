"""The Rasa entry point of every server we start: `bot rasa run …` is `rasa run …` with our
Rasa patches installed first (bot/serving/patches.py: refused, with a warning, on a Rasa
version they were not written for) and skops imported before TensorFlow (early_imports.py:
~13 s of every start).
"""
from __future__ import annotations

import sys
from typing import List, Optional

from bot.serving.early_imports import import_skops


def main(argv: Optional[List[str]] = None) -> int:
    import_skops()
    from bot.serving.patches import install

    install()
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *(sys.argv[1:] if argv is None else argv)]
    return rasa_main()


if __name__ == "__main__":
    sys.exit(main())
