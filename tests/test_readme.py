"""Every Python snippet of the README runs as written, and prints what its ``# →`` comments say.

A snippet is a ```python block. Each is run as a script in a fresh process, in a directory that
holds what the README has made by then (``runs/q4_alpha_sweep``, from ``gdlab run
q4_alpha_sweep``). A line ``print(...)   # → TEXT`` promises an output line beginning with TEXT
(cut at the first "…" or ";"), in the order of the snippet.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
PROMISE = re.compile(r"#\s*→\s*(.*)$")


def promised(block: str) -> list[str]:
    """The output prefixes a snippet's ``# →`` comments promise, in order."""
    out = []
    for line in block.splitlines():
        m = PROMISE.search(line)
        if m:
            out.append(re.split(r"…|;", m.group(1))[0].strip())
    return out


def test_the_readme_has_snippets_with_promises():
    assert len(BLOCKS) >= 4
    assert sum(len(promised(b)) for b in BLOCKS) >= 6
    assert promised("print(x)   # → (200, 3) …: a; b\nprint(y)  # → True PASS; x") == \
        ["(200, 3)", "True PASS"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("readme")
    done = subprocess.run([sys.executable, "-m", "gdlab", "run", "q4_alpha_sweep", "--out",
                           str(d / "runs" / "q4_alpha_sweep"), "--quiet"],
                          cwd=d, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return d


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_snippet_runs_and_prints_what_it_promises(index, workdir):
    block = BLOCKS[index]
    done = subprocess.run([sys.executable, "-c", block], cwd=workdir, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, f"README snippet {index} failed:\n{block}\n{done.stderr}"
    lines = done.stdout.splitlines()
    at = 0
    for want in promised(block):
        hits = [i for i in range(at, len(lines)) if lines[i].startswith(want)]
        assert hits, f"snippet {index}: no line from {at} on starts with {want!r}:\n{done.stdout}"
        at = hits[0] + 1
