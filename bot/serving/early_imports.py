"""Import skops (the loader of the logistic regression in our NLU) before the model loads.

`import skops.io` builds its list of trusted types by asking `pickle.whichmodule` for every
NumPy and SciPy ufunc, and that walks every module already imported, touching lazy attributes
of TensorFlow's modules on the way. Imported while the model loads (after TensorFlow), it took
15 of the server's 37 s of start-up in py-spy (still 15 s when our channels import it: Rasa has
imported TensorFlow by then). Imported first, it takes ~2 s, with the same trusted-type lists
for what our model file holds, so every Rasa server we start runs `bot.serving.rasa_cli`.
"""
from __future__ import annotations

import sys


def import_skops() -> None:
    if "skops.io" not in sys.modules:
        import skops.io  # noqa: F401
