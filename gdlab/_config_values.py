"""Checks of one config value or table against its kind: each returns the value, or raises a
:class:`ConfigError` that names the file and the key."""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, NoReturn

from gdlab import resources
from gdlab._config_messages import ConfigError, show_key, show_value
from gdlab._naming import did_you_mean
from gdlab.errors import GdlabError
from gdlab.problems import Param

__all__ = ["MAX_INT", "Validator"]

MAX_INT = 2**31 - 1      # integer keys are int32 inside the engine


class Validator:
    """Checks one file's tables; each method validates one key or table and returns its value,
    or raises ConfigError naming the key."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, key: str, message: str) -> NoReturn:
        """Raise ``file: key: message``."""
        raise ConfigError(f"{self.where}: {show_key(key)}: {message}")

    def table(self, parent: Mapping, name: str, known: Iterable[str] | None, *,
              required: bool = False) -> dict:
        """``parent[name]``, a table whose keys are all in ``known`` (any keys when None);
        ``{}`` when absent and not required."""
        if name not in parent:
            if required:
                self.fail(name, f"missing table; add a [{name}] section")
            return {}
        t = parent[name]
        if not isinstance(t, dict):
            self.fail(name, f"{show_value(t)} must be a table ([{name}])")
        if known is not None:
            for k in t:
                if k not in known:
                    self.unknown(f"{name}.{k}", k, known)
        return t

    def unknown(self, key: str, name: str, known: Iterable[str]) -> NoReturn:
        """Refuse an unknown key, suggesting the closest known one or listing them all."""
        hint = did_you_mean(name, known) or f"; known: {', '.join(known)}"
        self.fail(key, f"unknown key{hint}")

    def number(self, key: str, value: Any, *, positive: bool = False) -> float:
        """A finite int or float (not a bool), as a float; > 0 when ``positive``."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"{show_value(value)} must be a number")
        try:
            number = float(value)
        except OverflowError:
            self.fail(key, f"{show_value(value)} is too large for a floating-point number; "
                           "use a value below 1e308")
        if not math.isfinite(number):
            self.fail(key, f"{show_value(value)} must be finite")
        if positive and number <= 0:
            self.fail(key, f"{show_value(value)} must be > 0")
        return number

    def integer(self, key: str, value: Any, minimum: int, maximum: int = MAX_INT) -> int:
        """An int (not a bool) in ``[minimum, maximum]``."""
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"{show_value(value)} must be an integer (e.g. {max(minimum, 1)})")
        if value < minimum:
            self.fail(key, f"{show_value(value)} must be >= {minimum}")
        if value > maximum:
            self.fail(key, f"{show_value(value)} must be <= {maximum}")
        return value

    def param(self, key: str, value: Any, spec: Param) -> Any:
        """A problem parameter by its kind (float, int, vector, matrix); None keeps the default."""
        if value is None:
            return None
        if spec.kind in ("int", "seed"):
            v = self.integer(key, value, 1 if spec.positive else 0 if spec.kind == "seed"
                             else -2**31)
        elif spec.kind == "float":
            v = self.number(key, value, positive=spec.positive)
        elif spec.kind == "choice":
            return self.choice(key, value, spec.choices)
        elif spec.kind == "vector":
            if not isinstance(value, list):
                return self.number(key, value, positive=spec.positive)
            v = list(self.number_list(key, value, positive=spec.positive))
            if not v:
                self.fail(key, "[] must not be empty")
        else:  # matrix: a list of equally long rows
            if (not isinstance(value, list) or not value
                    or not all(isinstance(r, list) for r in value)):
                self.fail(key, f"{show_value(value)} must be a list of rows, "
                               "e.g. [[1.0, 0.0], [0.0, 2.0]]")
            v = [list(self.number_list(f"{key}[{i}]", r)) for i, r in enumerate(value)]
            if len({len(r) for r in v}) != 1 or not v[0]:
                self.fail(key, "rows must be non-empty and of equal length")
        if spec.nonzero and v == 0:
            self.fail(key, f"{show_value(value)} must be nonzero (the optimum would not exist)")
        return v

    def fits(self, key: str, needed: int, what: str, fix: str) -> None:
        """Refuse, naming ``key``, what would need more memory than the limit allows."""
        try:
            resources.check_fits(needed, argument=key, what=what, fix=fix)
        except GdlabError as e:
            raise ConfigError(f"{self.where}: {e}") from None

    def choice(self, key: str, value: Any, choices: Iterable[str]) -> str:
        """One of ``choices``, suggesting the closest when it is not."""
        if not isinstance(value, str) or value not in choices:
            self.fail(key, f"{show_value(value)} is not one of "
                           f"{', '.join(map(repr, choices))}{did_you_mean(value, choices)}")
        return value

    def number_list(self, key: str, value: Any, *, integer: bool = False,
                    positive: bool = False) -> tuple:
        """A list of numbers (of integers >= 1 when ``integer``), as a tuple."""
        if not isinstance(value, list):
            self.fail(key, f"{show_value(value)} must be a list, e.g. [0.5, 1.5]")
        if integer:
            return tuple(self.integer(f"{key}[{i}]", x, 1) for i, x in enumerate(value))
        return tuple(self.number(f"{key}[{i}]", x, positive=positive) for i, x in enumerate(value))
