"""TOML in: a config file read with its checks, parsed, and ``--set KEY=VALUE`` applied to it.

Everything here works on the raw table; :mod:`gdlab.config` validates it afterwards.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any, Iterable

from gdlab._config_messages import ConfigError, show_key, show_value

__all__ = ["read_text", "tomllib_loads", "parse_override", "apply_overrides"]

_MAX_CONFIG_BYTES = 16 * 2**20


def read_text(path: Path, where: str) -> str:
    """The text of a config file: a regular UTF-8 file (a BOM is accepted) of sane size."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such config file; "
                          "`gdlab list` shows the bundled configs") from None
    except OSError as e:
        raise ConfigError(f"{where}: cannot be read ({e.strerror}); "
                          "give a readable TOML file") from None
    if stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{where}: is a directory, not a config file; give a .toml file in it")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{where}: is not a regular file (a pipe or device?); give a TOML file")
    if st.st_size > _MAX_CONFIG_BYTES:
        raise ConfigError(f"{where}: {st.st_size} bytes is too large for a config (at most "
                          f"{_MAX_CONFIG_BYTES}); put large data in a .npy file")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not a UTF-8 text file; a config is TOML text") from None
    except OSError as e:
        raise ConfigError(f"{where}: cannot be read ({e.strerror}); "
                          "give a readable TOML file") from None


def tomllib_loads(text: str, where: str) -> dict:
    """``tomllib.loads``, with a syntax error or too deep a nesting raised as ConfigError."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: invalid TOML: {show_key(str(e))}") from None
    except RecursionError:
        raise ConfigError(f"{where}: invalid TOML: nested too deeply; flatten the tables") from None


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"run.steps=500"`` → (["run", "steps"], 500). Raises ConfigError when malformed."""
    if re.search(r"[\x00-\x1f\x7f]", item):
        raise ConfigError(f"--set {show_value(item)}: contains a line break or control character; "
                          "give one KEY=VALUE on one line")
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", key):
        raise ConfigError(f"--set {show_value(item)}: expected KEY=VALUE with a dotted key, "
                          "e.g. --set run.steps=500")
    text = text.strip()
    try:
        parsed = tomllib.loads(f"v = {text}")
        if set(parsed) != {"v"}:
            raise tomllib.TOMLDecodeError("more than one value")
        value = parsed["v"]
    except RecursionError:
        raise ConfigError(f"--set {key}: the value is nested too deeply") from None
    except tomllib.TOMLDecodeError:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.+-]*|\d+/\d+", text):
            value = text  # a bare word is a string: run.dtype=float64, sweep.shard=0/2
        else:
            raise ConfigError(f"--set {key}={show_value(text)}: not a TOML value; write e.g. "
                              f"{key}=3, {key}=0.5, {key}=[0.5, 1.5] or {key}='\"text\"'") from None
    return key.split("."), value


def apply_overrides(table: dict, overrides: Iterable[str], where: str) -> None:
    """Set each ``KEY=VALUE`` of ``overrides`` in ``table`` (in place), creating missing tables."""
    for item in overrides:
        keys, value = parse_override(item)
        node = table
        for i, k in enumerate(keys[:-1]):
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{where}: --set {item}: {'.'.join(keys[:i + 1])} is not a table")
        node[keys[-1]] = value
