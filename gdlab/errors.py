"""gdlab's exception types: every error a user can cause is one of these, with a one-line message.

``ArgumentError`` names the argument (``alphas``, ``steps``, ``w0`` …) of the Python API;
``ConfigError`` (in :mod:`gdlab.config`) names the file and the key; ``OutputError`` names the
output path. All derive from ``ValueError``, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = ["one_line", "GdlabError", "ArgumentError", "ArgumentTypeError", "OutputError",
           "TooLargeError", "USER_CODE_ERRORS"]

# What a user's code (a loss, an optimum, a w0 function, a module on import) may raise that gdlab
# reports in one line as that code's failure: any Exception, and SystemExit — a sys.exit() in a
# user's module must not end gdlab silently with its status. KeyboardInterrupt still stops gdlab.
USER_CODE_ERRORS = (Exception, SystemExit)


def one_line(e: BaseException) -> str:
    """``Type: first line of the message`` (at most 160 characters): someone else's exception
    inside one of gdlab's one-line errors."""
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:160]}"


class GdlabError(ValueError):
    """Base class: bad input to gdlab; ``str(err)`` is one line that says what to change."""


class ArgumentError(GdlabError):
    """A bad argument of the Python API; ``argument`` is its name (e.g. ``"alphas"``)."""

    def __init__(self, argument: str, message: str, *, prefix: bool = True):
        super().__init__(f"{argument}: {message}" if prefix else message)
        self.argument = argument
        self.detail = message


class ArgumentTypeError(ArgumentError, TypeError):
    """An argument of the wrong type (also a ``TypeError``)."""


class TooLargeError(ArgumentError):
    """A request that would need more memory than the limit (``gdlab.resources.memory_limit``)."""


class OutputError(GdlabError):
    """The output directory cannot be used, or writing it failed (nothing was left behind)."""
