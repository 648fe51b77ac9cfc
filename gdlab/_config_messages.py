"""How a config problem is reported: :class:`ConfigError`, and keys and values quoted safely.

A message is one line, ``file: key: value: fix``; a key or value that holds a newline or an ANSI
escape is shown escaped, and a long value is shortened, so that the line stays one line.
"""

from __future__ import annotations

import re
from typing import Any

from gdlab.errors import GdlabError

__all__ = ["ConfigError", "show_key", "show_value"]


class ConfigError(GdlabError):
    """A bad config file or override; the message is one line: file: key: value: fix."""


def show_key(key: str) -> str:
    """A key as typed, but with control characters (newline, ANSI escapes) escaped."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", lambda m: m[0].encode("unicode_escape").decode(),
                  str(key))


def show_value(value: Any, limit: int = 80) -> str:
    """``repr`` of a value, shortened to ``limit`` characters (a 10⁶-element list stays one
    line)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int too long for repr, a deeply nested list
        text = f"<{type(value).__name__}>"
    return show_key(text if len(text) <= limit else text[: limit - 5] + " …" + text[-2:])
