"""A terminal chat shows answers, not library notices: the warnings filter of `bot rasa shell`.

Rasa's shell printed 19 deprecation warnings (sanic-cors, pkg_resources, TensorFlow, pyparsing,
SQLAlchemy, click …), 8 of them in the middle of the first answer (modules imported lazily on
the first message). PYTHONWARNINGS=ignore does not hold: Sanic's `import` puts
`filterwarnings("once", DeprecationWarning)` in front of it, and Rasa's logging set-up does the
same for UserWarning. So the filters go in front again, once before anything is imported and
once after Rasa has configured its logging (the terminal channel calls this when Rasa creates
it). Only deprecation notices and Rasa's user warnings: errors and every log record stay.
"""
from __future__ import annotations

import warnings

QUIET = (DeprecationWarning, PendingDeprecationWarning, FutureWarning, UserWarning)
"""FutureWarning: Rasa's own deprecation notices; UserWarning: Rasa's configuration hints."""


def quiet_warnings() -> None:
    import sanic  # noqa: F401  (its filter first, so ours come before it)

    for category in QUIET:
        warnings.filterwarnings("ignore", category=category)
