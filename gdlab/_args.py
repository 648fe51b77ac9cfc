"""What every ``gdlab`` command shares: exit statuses and an argument parser whose errors are
one line."""

from __future__ import annotations

import argparse
from typing import NoReturn

__all__ = ["ArgumentParser", "EXIT_BAD_INPUT", "EXIT_BUG"]

EXIT_BAD_INPUT = 2  # the input was refused: one line says why, nothing was written
EXIT_BUG = 1        # anything else: a traceback and a line saying it is gdlab's fault


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr (and exit 2), without the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
