"""What every ``gdlab`` command shares: exit statuses and an argument parser whose errors are
one line and whose help is plain text."""

from __future__ import annotations

import argparse
import re
from typing import NoReturn

__all__ = ["ArgumentParser", "CommandParser", "EXIT_BAD_INPUT", "EXIT_BUG", "plain"]

EXIT_BAD_INPUT = 2  # the input was refused: one line says why, nothing was written
EXIT_BUG = 1        # anything else: a traceback and a line saying it is gdlab's fault


# :role:`~a.b` or :role:`a.b` (Sphinx), ``literal``, `interpreted`: the text inside, plain
_RST = re.compile(r"(?::[\w:.-]+:)?(``?)~?([^`]+?)\1")


def plain(text: str) -> str:
    """``text`` (a docstring, a help string) without reStructuredText markup, as shown plain."""
    return _RST.sub(r"\2", text)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr (and exit 2), without the usage block, and
    help texts (written like the docstrings they are often taken from) are shown plain."""

    def format_help(self) -> str:
        return plain(super().format_help())

    def format_usage(self) -> str:
        return plain(super().format_usage())

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class CommandParser(ArgumentParser):
    """A command's parser (``gdlab run``, as ``add_subparsers(parser_class=…)``): an argument it
    does not know is its own error, so the line points at ``gdlab run --help``; argparse would
    hand it up to the top-level parser, whose line points at ``gdlab --help``."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras
