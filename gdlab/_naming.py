"""The "did you mean" hint of every message that refuses an unknown name.

A name is looked up in a registry (problems, optimizers, homework functions), a config table's keys
or a list of choices; when it is not there, the message suggests the closest known name, chosen by
:func:`difflib.get_close_matches` (similarity ratio ≥ ``cutoff``).
"""

from __future__ import annotations

import difflib
from typing import Iterable

__all__ = ["did_you_mean"]


def did_you_mean(name, known: Iterable[str], *, cutoff: float = 0.6,
                 form: str = " (did you mean {!r}?)") -> str:
    """``form`` filled with the entry of ``known`` closest to ``name`` (``str(name)`` for a value
    that is not a string); ``""`` when none is close enough.

    >>> did_you_mean("stpes", ["steps", "tol"])
    " (did you mean 'steps'?)"
    """
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=cutoff)
    return form.format(close[0]) if close else ""
