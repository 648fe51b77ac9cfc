"""How gdlab names things: the "did you mean" hint of every message that refuses an unknown
name, and the symbols parameter names are drawn and described as (:func:`symbol`).

A name is looked up in a registry (problems, optimizers, homework functions), a config table's keys
or a list of choices; when it is not there, the message suggests the closest known name, chosen by
:func:`difflib.get_close_matches` (similarity ratio ≥ ``cutoff``).
"""

from __future__ import annotations

import difflib
import re
from typing import Iterable

__all__ = ["did_you_mean", "symbol"]

# Parameter names drawn as their symbols on axes, titles and legends; others keep their names.
_SYMBOLS = {"alpha": "α", "beta": "β", "b1": "β₁", "b2": "β₂", "lam": "λ", "lam_max": "λ_max",
            "kappa": "κ", "eps": "ε"}
_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def did_you_mean(name, known: Iterable[str], *, cutoff: float = 0.6,
                 form: str = " (did you mean {!r}?)") -> str:
    """``form`` filled with the entry of ``known`` closest to ``name`` (``str(name)`` for a value
    that is not a string); ``""`` when none is close enough.

    >>> did_you_mean("stpes", ["steps", "tol"])
    " (did you mean 'steps'?)"
    """
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=cutoff)
    return form.format(close[0]) if close else ""


def symbol(name: str) -> str:
    """The symbol of a parameter name: ``beta`` → β, ``b1`` → β₁, ``alpha_2`` → α₂ (a per-layer
    step size); a name without one comes back unchanged."""
    if name in _SYMBOLS:
        return _SYMBOLS[name]
    m = re.fullmatch(r"alpha_(\d+)", name)
    return "α" + m.group(1).translate(_SUBSCRIPT) if m else name
