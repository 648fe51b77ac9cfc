"""Run directories that are either complete or absent.

Everything is written into a hidden sibling ``.NAME.partial-PID`` and renamed into place only when
the whole run succeeded, so an interrupted run never leaves a directory that looks complete. An
existing directory is replaced only with ``overwrite=True``, and only after the new one is ready.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np

__all__ = ["RunDirError", "check_target", "run_directory", "write_json", "write_npz"]


class RunDirError(ValueError):
    """The output directory cannot be used (exists without --overwrite, or is a file)."""


def check_target(out: Path, overwrite: bool) -> None:
    """Fail early, before any work, if ``out`` cannot become the run directory."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{out}: exists and is not a directory; choose another --out")
    if out.exists() and not overwrite:
        raise RunDirError(f"{out}: run directory already exists; pass --overwrite to replace it "
                          "or --out DIR to write elsewhere")


@contextlib.contextmanager
def run_directory(out: Path, overwrite: bool):
    """Yield a temporary directory that becomes ``out`` when the block ends without error."""
    out = Path(out)
    check_target(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def _plain(x):
    """JSON-safe: numpy scalars to Python, non-finite floats to strings (JSON has no NaN/inf)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def write_json(path: Path, obj) -> None:
    Path(path).write_text(json.dumps(_plain(obj), indent=2, ensure_ascii=False, allow_nan=False)
                          + "\n", encoding="utf-8")


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Named arrays, loadable with ``np.load(path, allow_pickle=False)`` (no object arrays)."""
    for name, a in arrays.items():
        if np.asarray(a).dtype.kind == "O":
            raise TypeError(f"results.npz: {name} would need pickle")
    np.savez_compressed(path, **arrays)
