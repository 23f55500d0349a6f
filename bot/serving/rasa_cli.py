"""`rasa` with our early imports: `python -m bot.serving.rasa_cli run …` is `rasa run …`.

Why: see early_imports.py (skops imported before TensorFlow saves ~13 s of every start).
"""
from __future__ import annotations

import sys

from bot.serving.early_imports import import_skops


def main() -> int:
    import_skops()
    from rasa.__main__ import main as rasa_main

    sys.argv[0] = "rasa"
    return rasa_main()


if __name__ == "__main__":
    sys.exit(main())
