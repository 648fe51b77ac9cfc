"""Shared test settings.

Rank promotion is strict, so an (n_alpha,) array silently broadcasting against a parameter axis
raises instead of producing a plausible-looking wrong map.
"""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
# Tests keep off the user's persistent compilation cache (gdlab.cli.compile_cache); the cache has
# its own test, in a temporary directory.
os.environ["GDLAB_CACHE_DIR"] = ""

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def repo_root():
    return REPO
