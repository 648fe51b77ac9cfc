"""Shared test settings.

Rank promotion is strict, so an (n_alpha,) array silently broadcasting against a parameter axis
raises instead of producing a plausible-looking wrong map.

Hypothesis draws the same examples on every run (profile "gdlab": derandomized, no example
database), so a CI verdict does not depend on the draw; ``HYPOTHESIS_PROFILE=explore`` draws fresh
examples on each run, to hunt for new cases before a numerical change lands.
"""

import os
import runpy
import sys

os.environ.setdefault("MPLBACKEND", "Agg")
# Tests keep off the user's persistent compilation cache (gdlab.cli.compile_cache); the cache has
# its own test, in a temporary directory.
os.environ["GDLAB_CACHE_DIR"] = ""

import jax  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("gdlab", derandomize=True, database=None)
settings.register_profile("explore", database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "gdlab"))

jax.config.update("jax_numpy_rank_promotion", "raise")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def repo_root():
    return REPO


@pytest.fixture
def run_script(capsys, monkeypatch):
    """``run_script(name, *args)`` → (exit status, what it printed): experiments/NAME run in this
    process as ``python experiments/NAME ARGS`` runs it (as ``__main__``, with that argv), without
    an interpreter and JAX start-up per script, sharing the programs this process compiled."""
    def run(name, *args):
        path = os.path.join(REPO, "experiments", name)
        monkeypatch.setattr(sys, "argv", [path, *map(str, args)])
        monkeypatch.syspath_prepend(os.path.dirname(path))
        try:
            runpy.run_path(path, run_name="__main__")
            status = 0
        except SystemExit as stop:
            status = 0 if stop.code is None else stop.code
        out, err = capsys.readouterr()
        return status, out + err
    return run


@pytest.fixture(scope="session")
def trajectories_run(tmp_path_factory):
    """A run directory of configs/q4_trajectories.toml as ``gdlab run`` writes it, made once per
    session: tests that need an existing gdlab directory copy it (``shutil.copytree``) instead of
    running the study again (only reading it here)."""
    from gdlab import cli
    out = tmp_path_factory.mktemp("trajectories") / "t"
    assert cli.main(["run", os.path.join(REPO, "configs", "q4_trajectories.toml"),
                     "--out", str(out)]) == 0
    return out
