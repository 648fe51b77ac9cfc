"""Disjoint shards in separate processes, merged, equal a single-process run; merge refuses
misuse."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from gdlab import cli

CFG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs",
                   "momentum_alpha_beta.toml")
SMALL = ["--set", "sweep.alpha={start=0.0, stop=4.0, num=37}",
         "--set", "sweep.beta={start=0.0, stop=0.9, num=7}", "--set", "run.steps=300"]


def shard(tmp_path, i, n, extra=()):
    return subprocess.Popen([sys.executable, "-m", "gdlab", "run", CFG, *SMALL, *extra,
                             "--set", f"sweep.shard={i}/{n}", "--out", str(tmp_path / f"s{i}")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def halves(tmp_path_factory):
    """Shards 0/2 and 1/2 of one sweep, made by two processes at once (shared by the tests here,
    which only read them)."""
    root = tmp_path_factory.mktemp("shards")
    procs = [shard(root, i, 2) for i in (0, 1)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    return root


def test_two_processes_merge_to_the_single_run(halves, tmp_path, capsys):
    assert cli.main(["merge", str(halves / "s1"), str(halves / "s0"), "--out",
                     str(tmp_path / "merged")]) == 0
    assert cli.main(["run", CFG, *SMALL, "--out", str(tmp_path / "single")]) == 0
    a = np.load(tmp_path / "merged" / "results.npz", allow_pickle=False)
    b = np.load(tmp_path / "single" / "results.npz", allow_pickle=False)
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    sa = json.loads((tmp_path / "merged" / "summary.json").read_text())
    sb = json.loads((tmp_path / "single" / "summary.json").read_text())
    assert [k for k in sa if sa[k] != sb[k]] == ["timings"]


def test_merge_refuses_missing_duplicate_and_foreign_shards(halves, tmp_path, capsys):
    s0, s1 = halves / "s0", halves / "s1"
    args = lambda *dirs: ["merge", *map(str, dirs), "--out", str(tmp_path / "m")]
    assert cli.main(args(s0)) == 2
    assert "merge: shards 1/2 are missing" in capsys.readouterr().err
    assert cli.main(args(s0, s0, s1)) == 2
    assert "shard 0/2 given twice" in capsys.readouterr().err
    assert cli.main(args(s0, halves)) == 2
    assert "not a shard directory (no shard.json)" in capsys.readouterr().err
    # shard 1/2 of another sweep (one more step), made in this process
    other = tmp_path / "other"
    assert cli.main(["run", CFG, *SMALL, "--set", "run.steps=301", "--set", "sweep.shard=1/2",
                     "--out", str(other)]) == 0
    capsys.readouterr()
    assert cli.main(args(s0, other)) == 2
    assert re.search(r"shard 1/2 belongs to a different sweep", capsys.readouterr().err)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("value, message", [
    ("2/2", 'sweep.shard: \'2/2\' must be "i/n" with 0 <= i < n'),
    ("1", 'sweep.shard: 1 must be "i/n" with 0 <= i < n'),
    ("a/b", "not a TOML value; write e.g. sweep.shard=3"),
])
def test_bad_shard_spec(tmp_path, capsys, value, message):
    assert cli.main(["run", CFG, "--set", f"sweep.shard={value}",
                     "--out", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "x").exists()
