"""Every bundled config on two trees, every result array compared bit for bit.

    python benchmarks/bit_identity.py OLD_REV            # OLD_REV's tree against this one
    python benchmarks/bit_identity.py OLD_REV --new REV  # or against another revision

A change that reshapes code (no change in behaviour intended) must print "identical" for every
config. Each tree runs in its own process with its own ``gdlab`` first on ``sys.path``; the
comparison covers every array of ``results.npz`` (dtype, shape and bytes) and, for the gradient
lab, ``gradients.json`` without its timings. Exit status 1 if anything differs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def tree(rev: str | None, scratch: Path) -> Path:
    """A checkout of ``rev`` (a detached worktree), or this working tree for None."""
    if rev is None:
        return ROOT
    path = scratch / f"tree-{rev.replace('/', '_')}"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(path), rev],
                   check=True, capture_output=True)
    return path


def run_all(src: Path, out: Path) -> dict[str, int]:
    env = dict(os.environ, PYTHONPATH=str(src), GDLAB_CACHE_DIR="", JAX_NUM_CPU_DEVICES="2")
    where = subprocess.run([sys.executable, "-c", "import gdlab; print(gdlab.__file__)"], env=env,
                           capture_output=True, text=True, cwd=src).stdout.strip()
    if not Path(where).resolve().is_relative_to(src.resolve()):  # else the check would be vacuous
        raise SystemExit(f"{src}: python imports gdlab from {where}, not from this tree")
    codes = {}
    for cfg in sorted((ROOT / "configs").glob("*.toml")):
        p = subprocess.run([sys.executable, "-m", "gdlab", "run", str(cfg), "--out",
                            str(out / cfg.stem), "--no-progress"], env=env, capture_output=True,
                           text=True, cwd=src)
        codes[cfg.stem] = p.returncode
        if p.returncode not in (0, 1):
            print(f"{src}: {cfg.name}: exit {p.returncode}: {p.stderr.strip()[-300:]}")
    return codes


def compare(a: Path, b: Path) -> list[str]:
    """Names of what differs between run directories ``a`` and ``b``."""
    diffs = []
    if (a / "results.npz").exists() or (b / "results.npz").exists():
        with np.load(a / "results.npz", allow_pickle=False) as za, \
                np.load(b / "results.npz", allow_pickle=False) as zb:
            for name in sorted(set(za.files) | set(zb.files)):
                if name not in za.files or name not in zb.files:
                    diffs.append(f"{name} (only in one)")
                    continue
                x, y = za[name], zb[name]
                if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
                    diffs.append(name)
    for name in ("gradients.json",):
        if (a / name).exists() or (b / name).exists():
            strip = lambda d: {k: v for k, v in d.items() if k not in ("timings", "versions")}
            ja, jb = (strip(json.loads((d / name).read_text())) for d in (a, b))
            if ja != jb:
                diffs.append(name)
    return diffs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old", help="the revision before the change, e.g. HEAD~3")
    p.add_argument("--new", default=None, help="the revision after (default: this working tree)")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        trees = {"old": tree(a.old, scratch), "new": tree(a.new, scratch)}
        try:
            codes = {k: run_all(src, scratch / f"out-{k}") for k, src in trees.items()}
            bad = 0
            for stem in sorted(codes["old"]):
                if codes["old"][stem] != codes["new"][stem]:
                    print(f"{stem}: exit {codes['old'][stem]} before, {codes['new'][stem]} after")
                    bad += 1
                    continue
                diffs = compare(scratch / "out-old" / stem, scratch / "out-new" / stem)
                print(f"{stem}: " + ("identical" if not diffs else "DIFFERS: " + ", ".join(diffs)))
                bad += bool(diffs)
        finally:
            for _k, src in trees.items():
                if src != ROOT:
                    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                    str(src)], capture_output=True)
    print(f"{len(codes['old']) - bad} of {len(codes['old'])} configs identical")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
