"""gdlab merge checks every file it reads: a bad shard is one line of error, and nothing is written.

Two shards of a small least-squares sweep (vector parameter, eigen-modes, snapshots: every array a
shard can hold) are made once; each test damages a copy of shard 1 and merges.
"""

import io
import json
import math
import os
import shutil
import zipfile

import numpy as np
import pytest

from gdlab import cli, engine, shards

CFG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs",
                   "linreg_alpha_sweep.toml")
SMALL = ["--set", "problem.m=12", "--set", "problem.d=3", "--set", "run.steps=40",
         "--set", "sweep.alpha={start=0.0, stop=2.5, num=7}"]   # 7 runs: shard 0/2 has 3, 1/2 has 4


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    for i in (0, 1):
        assert cli.main(["run", CFG, *SMALL, "--set", f"sweep.shard={i}/2",
                         "--out", str(root / f"s{i}")]) == 0
    return root


@pytest.fixture
def copies(made, tmp_path):
    for i in (0, 1):
        shutil.copytree(made / f"s{i}", tmp_path / f"s{i}")
    return tmp_path


def edit_npz(change):
    """A damage: ``change(arrays)`` edits shard 1's arrays in place, which are then saved back."""
    def damage(d):
        with np.load(d / "shard.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        change(arrays)
        np.savez_compressed(d / "shard.npz", **arrays)
    return damage


def edit_json(change):
    """A damage: ``change(meta)`` edits shard 1's shard.json in place, which is then saved back."""
    def damage(d):
        meta = json.loads((d / "shard.json").read_text(encoding="utf-8"))
        change(meta)
        (d / "shard.json").write_text(json.dumps(meta), encoding="utf-8")
    return damage


def set_item(name, index, value):
    return edit_npz(lambda a: a[name].__setitem__(index, value))


def truncate(name):
    def damage(d):
        data = (d / name).read_bytes()
        (d / name).write_bytes(data[: len(data) // 2])
    return damage


def scramble(name):
    def damage(d):
        data = bytearray((d / name).read_bytes())
        data[len(data) // 3: len(data) // 3 + 40] = bytes(40)
        (d / name).write_bytes(bytes(data))
    return damage


def add_member(name, array):
    def damage(d):
        buf = io.BytesIO()
        np.save(buf, array, allow_pickle=True)
        with zipfile.ZipFile(d / "shard.npz", "a") as z:
            z.writestr(name, buf.getvalue())
    return damage


def replace_by_directory(name):
    def damage(d):
        (d / name).unlink()
        (d / name).mkdir()
    return damage


def write(name, data: bytes):
    return lambda d: (d / name).write_bytes(data)


def set_key(key, value):
    return edit_json(lambda m: m.__setitem__(key, value))


CASES = {
    # shard.npz: the file
    "truncated npz": (truncate("shard.npz"), "shard.npz: unreadable, truncated or corrupt"),
    "missing npz": (lambda d: (d / "shard.npz").unlink(), "shard.npz: missing"),
    "npz is a directory": (replace_by_directory("shard.npz"), "shard.npz: not a regular file"),
    "scrambled npz": (scramble("shard.npz"), "shard.npz: unreadable, truncated or corrupt"),
    "pickled array": (add_member("junk.npy", np.array([{}], dtype=object)),
                      "Object arrays cannot be loaded when allow_pickle=False"),
    "npz is empty": (write("shard.npz", b""), "shard.npz: unreadable"),
    "npz is text": (write("shard.npz", b"hello"), "shard.npz: unreadable"),
    "npz is one npy": (lambda d: np.save(open(d / "shard.npz", "wb"), np.zeros(3)),
                       "shard.npz: a single .npy array"),
    # shard.npz: which arrays
    "array deleted": (edit_npz(lambda a: a.pop("stats_flips")), "array stats_flips is missing"),
    "w_final deleted": (edit_npz(lambda a: a.pop("w_final")), "array w_final is missing"),
    "mode_flips deleted": (edit_npz(lambda a: a.pop("stats_mode_flips")),
                           "array stats_mode_flips is missing"),
    "snapshots in one shard": (edit_npz(lambda a: a.pop("snapshots")),
                               "array snapshots is missing but"),
    "extra array": (edit_npz(lambda a: a.__setitem__("junk", np.zeros(4))),
                    "unexpected array 'junk'"),
    # shard.npz: values
    "nan": (set_item("stats_err_late", 1, np.nan), "stats_err_late[1] = nan"),
    "inf": (set_item("w_final", (0, 2), np.inf), "w_final[0, 2] = inf"),
    "inf in snapshots": (set_item("snapshots", (3, 5, 1), -np.inf), "snapshots[3, 5, 1] = -inf"),
    "negative error": (set_item("stats_err_early", 2, -1.0), "stats_err_early[2] = -1.0"),
    "steps_to_tol -99": (set_item("stats_steps_to_tol", 0, -99),
                         "stats_steps_to_tol[0] = -99 (1 of 4 values bad); it must be in [-1, 40]"),
    "t_freeze 1e9": (set_item("stats_t_freeze", 3, 10**9),
                     "stats_t_freeze[3] = 1000000000 (1 of 4 values bad); it must be -1 or in "
                     "[1, 40]"),
    "t_freeze 0": (set_item("stats_t_freeze", 0, 0), "stats_t_freeze[0] = 0"),
    "flips beyond T": (set_item("stats_flips", 1, 41), "stats_flips[1] = 41"),
    "k_obs negative": (set_item("stats_k_obs", 1, -1), "stats_k_obs[1] = -1"),
    "mode_flips beyond T": (set_item("stats_mode_flips", (2, 1), 99),
                            "stats_mode_flips[2, 1] = 99"),
    "rec_dev nan": (set_item("stats_rec_dev", 0, np.nan), "stats_rec_dev[0] = nan"),
    # shard.npz: dtypes and shapes
    "flips as float": (edit_npz(lambda a: a.__setitem__("stats_flips", a["stats_flips"] + 0.5)),
                       "stats_flips has dtype float64, it must be int32"),
    "w_final as float64": (edit_npz(lambda a: a.__setitem__("w_final", a["w_final"].astype("f8"))),
                           "w_final has dtype float64, it must be float32"),
    "stats too short": (edit_npz(lambda a: a.__setitem__("stats_k_obs", a["stats_k_obs"][:3])),
                        "stats_k_obs has shape (3,), it must be (4,) (runs = 4)"),
    "w_final scalar per run": (edit_npz(lambda a: a.__setitem__("w_final", a["w_final"][:, 0])),
                               "w_final has shape (4,), it must be (4, 3)"),
    "snapshots shape": (edit_npz(lambda a: a.__setitem__("snapshots", a["snapshots"][:, :7])),
                        "snapshots has per-run shape (7, 3) but"),
    # shard.json: the file
    "not JSON": (write("shard.json", b"{not json"), "shard.json: not valid JSON"),
    "not UTF-8": (write("shard.json", b'{"runs": "\xff"}'), "shard.json: not UTF-8 text"),
    "JSON list": (write("shard.json", b"[1, 2]"), "shard.json: [1, 2] must be a JSON object"),
    "json is a directory": (replace_by_directory("shard.json"), "shard.json: not a regular file"),
    # shard.json: keys
    "missing key": (edit_json(lambda m: m.pop("runs")), "shard.json: runs: missing"),
    "missing config": (edit_json(lambda m: m.pop("config")), "shard.json: config: missing"),
    "bad shard index": (set_key("shard", [2, 2]), "shard.json: shard: [2, 2] must be [i, n]"),
    "negative shard index": (set_key("shard", [-1, 2]), "shard.json: shard: [-1, 2]"),
    "shard of floats": (set_key("shard", [1.0, 2]), "shard.json: shard: [1.0, 2]"),
    "shard not a list": (set_key("shard", "1/2"), "shard.json: shard: '1/2' must be [i, n]"),
    "shard disagrees with config": (set_key("shard", [0, 2]),
                                    "config: sweep.shard = '1/2' disagrees with shard = [0, 2]"),
    "wrong runs": (set_key("runs", 3), "shard.json: runs: 3, but shard 1/2 of the config's 7 runs "
                                       "holds 4"),
    "zero runs": (set_key("runs", 0), "shard.json: runs: 0 must be an integer >= 1"),
    "runs as bool": (set_key("runs", True), "shard.json: runs: True must be an integer"),
    "string compile_s": (set_key("compile_s", "1.5"),
                         "shard.json: compile_s: '1.5' must be a finite number"),
    "negative run_s": (set_key("run_s", -1.0), "shard.json: run_s: -1.0 must be a finite number"),
    "NaN compile_s": (set_key("compile_s", math.nan),
                      "shard.json: compile_s: nan must be a finite"),
    "huge compile_s": (set_key("compile_s", 10**400), "shard.json: compile_s: 1000"),
    "inf run_s": (set_key("run_s", math.inf), "shard.json: run_s: inf must be a finite"),
    "config_path not a string": (set_key("config_path", 3), "shard.json: config_path: 3 must be"),
    "config not an object": (set_key("config", [1]), "shard.json: config: [1] must be an object"),
    "config invalid": (edit_json(lambda m: m["config"]["run"].__setitem__("steps", -5)),
                       "linreg_alpha_sweep.toml: run.steps: -5 must be >= 1"),
    "config with null": (edit_json(lambda m: m["config"]["problem"].__setitem__("d", None)),
                         "shard.json: config: problem.d: null is not a config value"),
    "config of another kind": (set_key("config", {"gradients": {}}),
                               "shard.json: config: not a quadratic or loss-judged sweep config"),
    "newline in a value": (set_key("config_path", ["a\nb"]),
                           "shard.json: config_path: ['a\\nb'] must be a string"),
    "newline in a message": (edit_json(lambda m: m.update(config_path="a\nb", config={})),
                             "shard.json: config: a\\nb: problem: missing table"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_shard_is_one_line_and_writes_nothing(copies, capsys, case):
    damage, message = CASES[case]
    damage(copies / "s1")
    out = copies / "m"
    assert cli.main(["merge", str(copies / "s0"), str(copies / "s1"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.endswith("\n") and len(err.splitlines()) == 1, err
    assert err.startswith(f"gdlab: error: {copies / 's1'}: shard."), err
    assert message in err, err
    assert "re-run that shard: gdlab run CONFIG --set sweep.shard=" in err, err
    assert not out.exists() and not list(copies.glob(".m.partial-*"))


@pytest.mark.parametrize("name", ["nowhere", "s0/shard.json"])
def test_shard_directory_that_is_not_one(copies, capsys, name):
    out = copies / "m"
    assert cli.main(["merge", str(copies / "s0"), str(copies / name), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("gdlab: error: "), err
    assert ("no such directory" if name == "nowhere" else "not a directory") in err
    assert not out.exists() and not list(copies.glob(".m.partial-*"))


def test_every_engine_statistic_is_checked():
    assert {f"stats_{f}" for f in engine.RunStats._fields} <= set(shards._DISTANCE)
    assert {f"stats_{f}" for f in engine.LossStats._fields} <= set(shards._BY_LOSS)


def test_valid_shards_still_merge(copies, capsys):
    out = copies / "m"
    assert cli.main(["merge", str(copies / "s1"), str(copies / "s0"), "--out", str(out)]) == 0
    with np.load(out / "results.npz", allow_pickle=False) as z:
        assert z["mode_flips"].shape == (7, 3) and z["snapshot_w"].shape == (7, 41, 3)
        assert np.all(np.isfinite(z["snapshot_w"]))
