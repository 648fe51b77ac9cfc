"""A fuzz test over mutated bundled configs: every refused case is exit 2, one line on stderr with
no raw control character, no warning, and nothing written — no run directory, no partial one, no
compilation cache. Accepted cases stop at the engine (nothing is simulated), so the test covers
every check that runs before the work: the config's, the output path's and ``gdlab.sweep``'s.
"""

import random
import re
import shutil
import tomllib
import warnings
from pathlib import Path

import jax
import pytest
from jax._src import compilation_cache  # reset_cache: no public way to undo set-up

from gdlab import cli, engine, eos_study
from gdlab.gradients import study as gradient_study

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.toml"))

HOSTILE = [
    "0", "-1", "1", "2147483648", "9" * 400, "-" + "9" * 400, "1e300", "-1e300", "1e-320", "nan",
    "inf", "-inf", "true", "'x'", "''", "'\\u001b[31mred'", "'a\\nb'", "[]", "[[]]", "[1, 'a']",
    "[1e300]", "[" * 40 + "]" * 40, "{}", "{ start = 0.0 }", "{ start = 1.0, stop = 0.0, num = 3 }",
    "{ start = 0.0, stop = 1.0, num = 3000000000 }", "{ start = 0.0, stop = 1.0, num = 1e12 }",
    "{ start = -1.0, stop = 1.0, num = 3, scale = 'log' }", "1979-05-27", "0.5", "3",
    "{ start = 0.0, stop = " + "9" * 400 + ", num = 3 }", "[0.5, " + "9" * 400 + "]",
]
EXTRA_KEYS = ["sweep.alpha.start", "sweep.alpha.stop", "sweep.alpha.num", "sweep.alpha.scale",
              "run.stpes", "sweep.nope", "problem.zz", "optimizer.lr", "report.x", "nosuch.key",
              "sweep.shard", "run.devices", "optimizer.name", "problem.dim", "problem.m"]


class Accepted(BaseException):
    """Raised in place of the simulation: the input passed every check."""


def leaves(table, prefix=()):
    for k, v in table.items():
        if isinstance(v, dict) and k not in ("alpha",) and not {"start", "num"} & set(v):
            yield from leaves(v, prefix + (k,))
        else:
            yield ".".join(prefix + (k,))


def cases(n=360, seed=0):
    rng = random.Random(seed)
    out = []
    for cfg in CONFIGS:
        keys = list(leaves(tomllib.loads(cfg.read_text(encoding="utf-8")))) + EXTRA_KEYS
        for _ in range(n // len(CONFIGS)):
            sets = [f"{rng.choice(keys)}={rng.choice(HOSTILE)}"
                    for _ in range(rng.choice((1, 1, 2)))]
            out.append((cfg.name, sets))
    return out


@pytest.fixture
def no_work(monkeypatch):
    def stop(*a, **k):
        raise Accepted
    monkeypatch.setattr(engine, "simulate", stop)
    monkeypatch.setattr(gradient_study, "run_gradient_study", stop)
    monkeypatch.setattr(eos_study, "run_track_study", stop)


def check(tmp_path, capsys, monkeypatch, argv):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GDLAB_CACHE_DIR", str(cache))
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rc = cli.main([str(a) for a in argv])
        except Accepted:
            # A valid run sets up JAX's persistent cache in this process (a real `gdlab run` is a
            # process of its own): undo it, or a later refused network config, which builds its
            # network with JAX while it is checked, would write into that cache.
            shutil.rmtree(cache, ignore_errors=True)
            jax.config.update("jax_compilation_cache_dir", None)
            compilation_cache.reset_cache()
            return "accepted"
    err = capsys.readouterr().err
    assert rc == 2, (argv, rc, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gdlab: error: "), (argv, err)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", err), (argv, err)
    assert not [w for w in caught if not issubclass(w.category, DeprecationWarning)], (
        argv, [str(w.message) for w in caught])
    assert not cache.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["cfgs"], argv
    return "refused"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "cfgs").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_fuzzed_overrides_are_refused_in_one_line_and_write_nothing(workdir, capsys, monkeypatch,
                                                                    no_work):
    outcomes, failures = {"accepted": 0, "refused": 0}, []
    for name, sets in cases():
        cfg = workdir / "cfgs" / name
        cfg.write_text((Path(CONFIGS[0]).parent / name).read_text(encoding="utf-8"))
        argv = ["run", cfg, "--out", workdir / "out"] + [a for s in sets for a in ("--set", s)]
        try:
            outcomes[check(workdir, capsys, monkeypatch, argv)] += 1
        except AssertionError as e:
            failures.append(f"{name} {sets}: {str(e).splitlines()[0][-300:]}")
            for p in workdir.iterdir():
                if p.name != "cfgs":
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
        cfg.unlink()
    assert not failures, "\n".join(failures)
    # The mutations are hostile: most are refused, some valid ones pass (the test is not vacuous).
    assert outcomes["refused"] > 200 and outcomes["accepted"] > 5, outcomes


FILE_MUTATIONS = {
    "bom": lambda t: "\ufeff" + t,
    "key_with_escape": lambda t: t + '\n[run]\n"a\\u001b[31m\\nb" = 1\n' if "[run]" not in t
    else t.replace("[run]", '[run]\n"a\\u001b[31m\\nb" = 1', 1),
    "nested": lambda t: t + "\nx = " + "[" * 3000 + "]" * 3000 + "\n",
    "deep_tables": lambda t: t + "\n" + "[" + ".".join(["a"] * 3000) + "]\n",
    "not_utf8": lambda t: t.encode("latin-1", "replace").decode("latin-1") + "\n# \udcff",
    "empty": lambda t: "",
    "dup_key": lambda t: t + "\n[run]\nsteps = 1\n" if "[run]" in t else t + "\n[sweep]\n",
    "lbfgs": lambda t: re.sub(r'(?m)^\[optimizer\]\nname = .*$', '[optimizer]\nname = "lbfgs"', t)
    if "[optimizer]" in t else t + '\n[optimizer]\nname = "lbfgs"\n',
}


@pytest.mark.parametrize("mutation", sorted(FILE_MUTATIONS))
@pytest.mark.parametrize("config", [c.name for c in CONFIGS])
def test_mutated_config_files(workdir, capsys, monkeypatch, no_work, mutation, config):
    text = (CONFIGS[0].parent / config).read_text(encoding="utf-8")
    cfg = workdir / "cfgs" / config
    cfg.write_bytes(FILE_MUTATIONS[mutation](text).encode("utf-8", "surrogateescape"))
    outcome = check(workdir, capsys, monkeypatch, ["run", cfg, "--out", workdir / "out"])
    if mutation == "bom":
        assert outcome == "accepted"   # a UTF-8 BOM is accepted
    elif mutation != "lbfgs" or "gradients" not in config:
        assert outcome == "refused", mutation


@pytest.mark.parametrize("what", ["directory", "fifo", "devnull"])
def test_a_config_that_is_not_a_file_is_named_as_such(workdir, capsys, monkeypatch, what):
    import os
    path = {"directory": workdir / "cfgs", "fifo": workdir / "fifo",
            "devnull": Path("/dev/null")}[what]
    if what == "fifo":
        os.mkfifo(path)
    argv = ["run", path, "--out", workdir / "out"]
    cache = workdir / "cache"
    monkeypatch.setenv("GDLAB_CACHE_DIR", str(cache))
    assert cli.main([str(a) for a in argv]) == 2
    line = capsys.readouterr().err.strip()
    assert "no such config file" not in line
    assert ("is a directory" in line) if what == "directory" else ("not a regular file" in line)
    assert not (workdir / "out").exists() and not cache.exists()
