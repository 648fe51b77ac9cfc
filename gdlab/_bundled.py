"""The configs shipped with gdlab, and what a ``CONFIG`` argument names: a file, or the bare name of
a bundled config (``gdlab run q4_alpha_sweep``). Used by the command line and by ``gdlab view``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["BUNDLED", "bundled_configs", "config_path", "runnable_name"]


# The repository's configs/, shipped in the package (gdlab/configs links to it; a checkout without
# symbolic links, on Windows say, reads configs/ itself).
BUNDLED = next((p for p in (Path(__file__).parent / "configs", Path(__file__).parent.parent
                            / "configs") if p.is_dir()), Path(__file__).parent / "configs")


def bundled_configs() -> list[Path]:
    """The configs shipped with gdlab, then those in ./configs that differ from them (not the
    same file, nor a byte-identical copy of the bundled config of that name)."""
    seen, out = set(), []
    for root in (BUNDLED, Path.cwd() / "configs"):
        for p in sorted(root.glob("*.toml")) if root.is_dir() else []:
            if p.is_file() and p.resolve() not in seen and not _copy_of_bundled(p):
                seen.add(p.resolve())
                out.append(p)
    return out


def _copy_of_bundled(path: Path) -> bool:
    """Is ``path`` (outside the bundle) a byte-identical copy of the bundled config of its name?"""
    twin = BUNDLED / path.name
    if path.parent.resolve() == BUNDLED.resolve() or not twin.is_file():
        return False
    try:
        return path.read_bytes() == twin.read_bytes()
    except OSError:
        return False


def config_path(config: str) -> str:
    """The file ``gdlab run CONFIG`` reads: ``config`` itself when it exists, else for a bare name
    (``q4_alpha_sweep`` or ``q4_alpha_sweep.toml``) the file ``NAME.toml`` of the current directory
    if there is one, else the bundled config of that name, shown relative to the current directory
    when it is under it; anything else is returned as given (and refused by the config loader)."""
    if os.path.lexists(config) or os.sep in config or (os.altsep or os.sep) in config:
        return config
    name = config if config.endswith(".toml") else f"{config}.toml"
    if os.path.lexists(name):      # a file of that name here wins over the bundled one
        return name
    bundled = BUNDLED / name
    return _shown(bundled) if bundled.is_file() else config


def _shown(path: Path) -> str:
    """``path`` relative to the current directory when it lies below it, else absolute."""
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path.absolute())


def runnable_name(path: Path) -> str:
    """What to type after ``gdlab run`` for ``path``: a bundled config's bare name, else a path."""
    if path.parent == BUNDLED and config_path(path.stem) == _shown(path):
        return path.stem
    return _shown(path)
