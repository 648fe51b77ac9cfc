"""Run directories that are either complete or absent, and never replace what gdlab did not write.

Everything is written into a hidden sibling ``.NAME.partial-PID`` and renamed into place only when
the whole run succeeded, so an interrupted run never leaves a directory that looks complete
(:func:`run_directory`; a run's whole epilogue, files then log lines, is :func:`write_run`). The
rename refuses to land on a directory that appeared meanwhile (``renameat2(RENAME_NOREPLACE)`` on
Linux): the results then stay in a visible sibling ``NAME.conflict-PID`` and the caller is told.
A single file (a redrawn plot, the marker, an export) is replaced the same way, through a hidden
sibling renamed into place, optionally never onto an existing file (:func:`replace_file`).

``overwrite=True`` replaces only a directory gdlab wrote — one holding gdlab's marker
(``.gdlab-run.json``, with the list of files it wrote) and nothing else — and never the current
directory, one of its parents, or a directory named in ``protect`` (the config's, the shards') or a
parent of one. A run directory is never written inside another (that one's ``--overwrite``
would then refuse it). Everything is checked before any work (:func:`check_target`).

A process killed with SIGKILL leaves its partial directory behind; the next run to the same target
removes those of processes (on this host) that no longer exist.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import functools
import json
import math
import os
import shutil
import socket
import threading
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

import numpy as np

from gdlab import distributed, report_html
from gdlab.errors import OutputError

__all__ = ["RunDirError", "MARKER", "check_target", "run_directory", "RunFiles", "write_run",
           "abandon", "jsonable", "write_json", "write_npz", "is_gdlab_directory", "listed_files",
           "record_files", "replace_file"]

MARKER = ".gdlab-run.json"
_OWNER = ".owner.json"          # inside a partial directory: which host and process writes it
_SUFFIX_ROOM = len(".partial-4194304") + 1  # the longest hidden sibling we add to a name


class RunDirError(OutputError):
    """The output directory cannot be used (exists without --overwrite, not gdlab's, …)."""


# Partial directories being written by this process, and whether a signal abandoned the run
# (see :func:`abandon`); the lock makes "commit" and "abandon" exclusive.
_ACTIVE: set[Path] = set()
_LOCK = threading.Lock()
_STATE = {"abandoned": False}


def is_gdlab_directory(path: Path) -> bool:
    """Does ``path`` hold gdlab's marker and only the files the marker lists?

    Run directories of gdlab versions before the marker are recognised by their own record of
    what they hold: ``summary.json``'s ``files``, or a shard's ``shard.json`` + ``shard.npz``.
    """
    try:
        present = set(os.listdir(path))
    except OSError:
        return False
    listed = listed_files(path)
    return listed is not None and present - {MARKER} <= set(listed)


def listed_files(path: Path) -> list[str] | None:
    """The files gdlab wrote into the run directory ``path``, as it recorded them (the marker, or
    before the marker ``summary.json``'s / ``gradients.json``'s ``files``, a shard's two files);
    None where ``path`` holds no such record."""
    path = Path(path)
    try:
        present = set(os.listdir(path))
        if MARKER in present:
            listed = json.loads((path / MARKER).read_text(encoding="utf-8"))["files"]
        elif present == {"shard.json", "shard.npz"}:
            listed = ["shard.json", "shard.npz"] if "shard" in json.loads(
                (path / "shard.json").read_text(encoding="utf-8")) else []
        else:  # a sweep's summary.json or the gradient lab's gradients.json lists the files
            record = "summary.json" if "summary.json" in present else "gradients.json"
            listed = [record, *json.loads((path / record).read_text(encoding="utf-8"))["files"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return list(map(str, listed)) if isinstance(listed, list) else None


def record_files(path: Path, names: Iterable[str]) -> None:
    """Add ``names`` to the marker's list of the files gdlab wrote into the run directory ``path``
    (the marker written atomically; one is created from the older record where there is none), so
    that ``--overwrite`` still recognises it after ``gdlab plot`` added a file."""
    listed = listed_files(path) or []
    text = json.dumps({"gdlab": "run directory", "files": sorted({*listed, *names})}) + "\n"
    replace_file(Path(path) / MARKER, lambda p: _write_text(p, text))


def replace_file(path: Path, write: Callable[[Path], None], *, exclusive: bool = False) -> None:
    """Write ``path`` atomically: ``write(tmp)`` fills a hidden sibling ``.NAME.tmp-PID``, which
    then takes ``path``'s place in one rename; a failure leaves ``path`` as it was and no sibling.

    ``exclusive``: never replace a file, not even one that appeared while ``write`` ran — raise
    FileExistsError then (atomically where the OS can, see :func:`_rename_noreplace`). Other
    failures raise OSError as ``write`` or the rename raised them, its ``filename`` set to ``path``
    (not the hidden sibling; a failed write into an open file names no file); callers word them.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        if exclusive:
            _rename_noreplace(tmp, path)
        else:
            os.replace(tmp, path)
    except OSError as e:
        e.filename, e.filename2 = str(path), None
        raise
    finally:
        if os.path.lexists(tmp):
            tmp.unlink()


def _inside(a: Path, b: Path) -> bool:
    """Is ``b`` equal to ``a`` or inside it (both resolved)?"""
    return a == b or a in b.parents


def _existing_ancestor(path: Path) -> Path:
    p = path
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def check_target(out: Path, overwrite: bool, *, protect: Iterable[Path] = ()) -> None:
    """Fail early, before any work and creating nothing, if ``out`` cannot become the run directory.

    Raises RunDirError with one line naming ``out``, why, and what to do instead.
    """
    out = Path(out)
    name = out.name
    if name in ("", ".", "..") or str(out).endswith(os.sep + ".."):
        raise RunDirError(f"{out}: names no new directory; give --out a directory name such as "
                          "runs/my_run")
    if "\n" in str(out) or "\r" in str(out):
        raise RunDirError(f"{str(out)!r}: a line break in a path; choose another --out")
    if os.path.islink(out):
        raise RunDirError(f"{out}: is a symbolic link; give the directory it should be as --out")
    try:
        resolved = out.resolve()
        cwd = Path.cwd().resolve()
    except (OSError, RuntimeError) as e:
        raise RunDirError(f"{out}: cannot be resolved ({e}); choose another --out") from None
    if _inside(resolved, cwd):
        raise RunDirError(f"{out}: is the current directory or a parent of it; gdlab never writes "
                          "there, give --out a new directory such as runs/my_run")
    for p in protect:
        p = Path(p).resolve()
        if _inside(resolved, p):
            raise RunDirError(f"{out}: holds {p} (an input of this run); choose another --out")
    inside = _enclosing_run(resolved)
    if inside is not None:
        raise RunDirError(f"{out}: is inside the gdlab run directory {inside} (whose --overwrite "
                          f"would then refuse it); choose an --out outside it, such as "
                          f"{inside.parent / name}")
    max_name = _name_max(out.parent)
    if len(os.fsencode(name)) + _SUFFIX_ROOM > max_name:
        raise RunDirError(f"{out}: the name is {len(os.fsencode(name))} bytes long; at most "
                          f"{max_name - _SUFFIX_ROOM} fit here, choose a shorter --out")
    if os.path.lexists(out):
        if not out.is_dir():
            raise RunDirError(f"{out}: exists and is not a directory; choose another --out")
        if not overwrite:
            raise RunDirError(f"{out}: run directory already exists; pass --overwrite to replace "
                              "it or --out DIR to write elsewhere")
        if not is_gdlab_directory(out):
            raise RunDirError(_not_ours(out))
    ancestor = _existing_ancestor(resolved.parent)
    if not ancestor.is_dir():
        raise RunDirError(f"{out}: {ancestor} is a file, not a directory; choose another --out")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise RunDirError(f"{out}: {ancestor} is not writable; choose another --out")


def _enclosing_run(resolved: Path) -> Path | None:
    """The innermost existing directory above ``resolved`` that is a gdlab run directory (it
    records the files gdlab wrote, :func:`listed_files`), or None."""
    for p in resolved.parents:
        if p.is_dir() and listed_files(p) is not None:
            return p
    return None


def _not_ours(out: Path) -> str:
    if not (out / MARKER).exists():
        why = "has no gdlab marker (.gdlab-run.json) nor a summary listing its files"
    else:
        try:
            listed = set(json.loads((out / MARKER).read_text(encoding="utf-8"))["files"])
            extra = sorted(set(os.listdir(out)) - listed - {MARKER})
        except (OSError, ValueError, KeyError, TypeError):
            extra = []
        shown = ", ".join(repr(e) for e in extra[:3]) + (", …" if len(extra) > 3 else "")
        why = (f"holds files gdlab did not write ({shown})" if extra
               else "has an unreadable gdlab marker")
    return (f"{out}: {why}; --overwrite replaces only a run directory gdlab wrote, with nothing "
            "else in it: move those files or choose another --out")


def _name_max(parent: Path) -> int:
    try:
        return os.pathconf(_existing_ancestor(Path(parent).resolve()), "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def _remove_stale(out: Path) -> None:
    """Remove ``.NAME.partial-PID`` / ``.NAME.old-PID`` siblings left by dead processes here."""
    host = socket.gethostname()
    try:
        siblings = list(out.parent.iterdir())
    except OSError:
        return
    for p in siblings:
        for kind in (".partial-", ".old-"):
            prefix = f".{out.name}{kind}"
            if not p.name.startswith(prefix) or not p.name[len(prefix):].isdecimal():
                continue
            pid = int(p.name[len(prefix):])
            try:
                owner = json.loads((p / _OWNER).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                owner = {"host": host}  # an older gdlab's, or a replaced directory: by PID alone
            if pid != os.getpid() and owner.get("host") == host and not _alive(pid):
                shutil.rmtree(p, ignore_errors=True)


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def _rename_noreplace(src: Path, dst: Path) -> None:
    """Rename, failing with FileExistsError if ``dst`` exists (atomically where the OS can)."""
    fn = getattr(_libc(), "renameat2", None)
    if fn is not None:
        rc = fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise FileExistsError(err, os.strerror(err), str(dst))
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), str(dst))
    if os.path.lexists(dst):  # no atomic rename here: check, then rename
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
    os.rename(src, dst)


@functools.cache
def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


@contextlib.contextmanager
def run_directory(out: Path, overwrite: bool, *,
                  protect: Iterable[Path] = ()) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``out`` when the block ends without error.

    A failure while writing (a full disk, say) removes the temporary directory and raises
    RunDirError with one line; nothing is left behind.
    """
    out = Path(out)
    check_target(out, overwrite, protect=protect)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(out)
        tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        (tmp / _OWNER).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    except OSError as e:
        raise RunDirError(f"{out}: cannot create it ({e.strerror or e}); "
                          "choose another --out") from None
    with _LOCK:
        _ACTIVE.add(tmp)
    try:
        try:
            yield tmp
            with _LOCK:
                if _STATE["abandoned"]:
                    raise KeyboardInterrupt
                _commit(tmp, out, overwrite)
        except OSError as e:
            raise RunDirError(f"{out}: writing failed ({e.strerror or e}); nothing was kept; free "
                              "space or choose another --out") from None
    finally:
        with _LOCK:
            _ACTIVE.discard(tmp)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


class RunFiles(NamedTuple):
    """What a run writes: file name → content, written in this order (``.npz``: a dict of arrays,
    ``.json``: a JSON value, any other name: text), and the lines to log once it is in place."""

    files: dict[str, object]
    lines: list[str]


def write_run(out: Path, overwrite: bool, contents: Callable[[Path], RunFiles], *,
              log: Callable[[str], None] = print) -> None:
    """Every run's epilogue: write its files into the partial directory, put it in place as ``out``
    (with gdlab's marker, see :func:`run_directory`), then ``log`` its lines.

    ``contents(tmp)`` may first write files of its own into ``tmp`` (plots) and returns the
    :class:`RunFiles`; then the report is made from the files written
    (``gdlab.report_html.report_files``: report.html, and report.md for homework Q4). Nothing is
    logged unless the directory is in place. Under ``jax.distributed`` only process 0 writes and
    logs; the others return at once.
    """
    if not distributed.is_writer():
        return
    with run_directory(out, overwrite) as tmp:
        run = contents(tmp)
        for name, content in run.files.items():
            _WRITERS.get(Path(name).suffix, _write_text)(tmp / name, content)
        for name, text in report_html.report_files(tmp).items():
            _write_text(tmp / name, text)
    for line in run.lines:
        log(line)


def _commit(tmp: Path, out: Path, overwrite: bool) -> None:
    """Put ``tmp`` in place as ``out`` (called with the lock held)."""
    (tmp / _OWNER).unlink()
    files = sorted(os.listdir(tmp))
    (tmp / MARKER).write_text(json.dumps({"gdlab": "run directory", "files": files}) + "\n",
                              encoding="utf-8")
    old = None
    if overwrite and os.path.lexists(out):
        if not is_gdlab_directory(out):
            raise RunDirError(_not_ours(out))
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.rename(out, old)
    try:
        _rename_noreplace(tmp, out)
    except FileExistsError:
        kept = out.parent / f"{out.name}.conflict-{os.getpid()}"
        os.rename(tmp, kept)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        raise RunDirError(f"{out}: appeared while this run was computing (another run writing "
                          f"there?); these results are kept in {kept}: rename it, or delete "
                          "it") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def abandon() -> None:
    """Remove every partial directory of this process and refuse later commits (for signals)."""
    if not _LOCK.acquire(timeout=10):
        return
    try:
        _STATE["abandoned"] = True
        for tmp in list(_ACTIVE):
            for _ in range(5):  # a writer thread may still add files: repeat until it is gone
                shutil.rmtree(tmp, ignore_errors=True)
                if not os.path.lexists(tmp):
                    break
    finally:
        _LOCK.release()


def jsonable(x: object, *, nonfinite: str = "refuse") -> object:
    """``x`` as plain JSON values: dicts with string keys, lists (from tuples and arrays too),
    Python numbers (from numpy scalars); a NamedTuple or a dataclass becomes a dict of its fields.

    ``nonfinite`` says what a NaN or ±inf becomes. ``"refuse"`` raises FloatingPointError: a sweep's
    results are finite by construction (a diverged run is frozen at its last finite iterate), so
    one would be a bug. ``"null"`` writes JSON null, which a reader takes as "undefined" (the
    gradient lab's choice, see ``gdlab.gradients.report.to_json``).
    """
    if nonfinite not in ("refuse", "null"):
        raise ValueError(f"nonfinite={nonfinite!r}; use \"refuse\" or \"null\"")
    return _plain(x, nonfinite == "null")


def _plain(x, null: bool):
    if isinstance(x, dict):
        return {str(k): _plain(v, null) for k, v in x.items()}
    if isinstance(x, tuple) and hasattr(x, "_asdict"):  # a NamedTuple
        return {k: _plain(v, null) for k, v in x._asdict().items()}
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: _plain(getattr(x, f.name), null) for f in dataclasses.fields(x)}
    if isinstance(x, (list, tuple)):
        return [_plain(v, null) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist(), null)
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        if null:
            return None
        raise FloatingPointError(f"a non-finite value ({x}) would be written; this is a bug")
    return x


def write_json(path: Path, obj: object) -> None:
    """``obj`` as indented UTF-8 JSON; a non-finite number is refused (see :func:`jsonable`)."""
    Path(path).write_text(json.dumps(jsonable(obj), indent=2, ensure_ascii=False,
                                     allow_nan=False) + "\n", encoding="utf-8")


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Named arrays, loadable with ``np.load(path, allow_pickle=False)``: no object arrays, and no
    inf or NaN (a diverged run is frozen at its last finite iterate, never stored as inf)."""
    for name, a in arrays.items():
        a = np.asarray(a)
        if a.dtype.kind == "O":
            raise TypeError(f"results.npz: {name} would need pickle")
        if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
            raise FloatingPointError(f"results.npz: {name} holds a non-finite value; this is a bug")
    np.savez_compressed(path, **arrays)


def _write_text(path: Path, text: str) -> None:
    Path(path).write_text(text, encoding="utf-8")


_WRITERS: dict[str, Callable[[Path, object], None]] = {".npz": write_npz, ".json": write_json}
