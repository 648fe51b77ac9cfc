"""The command line's conventions: --version, the commands with no arguments, plain help texts,
bundled configs by name from any directory, nothing written unless asked, progress in logs,
--quiet, each stage's lines as it finishes, and the configs inside the wheel."""

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import gdlab
from gdlab import cli, study
from gdlab._args import plain
from gdlab.progress import Progress

ROOT = Path(__file__).resolve().parent.parent
# one progress line: "3/3 runs (100 %) [00:00<00:00, 32.8k updates/s]"
PROGRESS_LINE = re.compile(r"^(\d+)/(\d+) runs \(\d+ %\) \[[\d:]+<[\d:?]+, [\d.]+\w? updates/s\]$")
# the float64 edge search of a 1-D sweep, after the sweep: its rounds, out of those it plans
EDGE_LINE = re.compile(r"^(\d+)/(\d+) rounds of the float64 edge search \(\d+ grid changes?\) "
                       r"\(\d+ %\) \[[\d:]+<[\d:?]+, [\d.]+\w? updates/s\]$")


def _commands() -> list[str]:
    """Every subcommand the parser knows (those added later included)."""
    parser = cli._parser()
    return sorted(next(a for a in parser._actions if a.dest == "command").choices)


def test_version_names_gdlab_and_jax_without_importing_jax():
    code = ("import sys\nfrom gdlab.cli import main\ntry:\n    main(['--version'])\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n"
            "print('jax imported' if 'jax' in sys.modules else 'jax not imported')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()
    # the reference: the installed distributions' metadata, read here independently
    assert out[0] == (f"gdlab {metadata.version('gdlab')} (jax {metadata.version('jax')}, "
                      f"Python {sys.version.split()[0]})")
    assert out[1] == "jax not imported"


def test_no_arguments_lists_the_commands(capsys):
    assert cli.main([]) == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: gdlab") and "gdlab COMMAND --help" in text
    for name in _commands():
        assert re.search(rf"(?m)^\s+{name}\s+\S", text), name   # each with its one-line help


def test_plain_strips_restructured_text():
    assert (plain("``gdlab bench``: see :mod:`gdlab.engine`, :func:`~gdlab.sweep` and `x`.")
            == "gdlab bench: see gdlab.engine, gdlab.sweep and x.")


@pytest.mark.parametrize("command", [None, *_commands()])
def test_help_texts_have_no_restructured_text(command, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([command, "--help"] if command else ["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "usage: gdlab" in text and "``" not in text, text
    assert not re.search(r":\w+:`", text), text
    if command == "bench":   # its description is bench.py's docstring's first line, plain
        assert "gdlab bench: the canonical sweep against a NumPy implementation" in text


def test_bare_name_is_the_bundled_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("q4_trajectories", "q4_trajectories.toml"):
        assert Path(cli.config_path(name)).resolve() == ROOT / "configs" / "q4_trajectories.toml"
    (tmp_path / "q4_trajectories.toml").write_text("# mine\n")   # a file of that name wins
    assert cli.config_path("q4_trajectories.toml") == "q4_trajectories.toml"
    assert cli.config_path("q4_trajectories") == "q4_trajectories.toml"   # the bare name too
    assert cli.config_path("configs/nope.toml") == "configs/nope.toml"   # a path stays a path
    assert cli.config_path("nope") == "nope"            # refused by the loader, as before


def test_list_shows_names_runnable_from_here(tmp_path, monkeypatch, capsys):
    (tmp_path / "configs").mkdir()
    shutil.copy(ROOT / "configs" / "q4_trajectories.toml", tmp_path / "configs" / "mine.toml")
    # a byte-identical copy of a bundled config under its own name is the bundled one: not listed
    shutil.copy(ROOT / "configs" / "q4_alpha_sweep.toml", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["list"]) == 0
    text = capsys.readouterr().out
    section = text.split("configs (gdlab run NAME):\n")[1].split("problems:")[0]
    entries = re.split(r"\n(?=  \S)", section.rstrip("\n"))   # continuation lines are indented
    names = [e.split()[0] for e in entries]
    bundled = sorted(p.stem for p in (ROOT / "configs").glob("*.toml"))
    assert names == [*bundled, "configs/mine.toml"]
    # each description is the whole first sentence of the config's leading comment, not its
    # first line cut mid-sentence
    eos = " ".join(entries[names.index("eos_digits")].split()[1:])
    assert eos.startswith("The edge of stability on a real dataset") and eos.endswith(
        "(standard parameterization, MSE on one-hot targets, float32).")
    assert "custom" in text.split("problems:")[1].split("optimizers:")[0]
    for name in names:    # each resolves, from here, to the file it names
        expected = (tmp_path / name if "/" in name else ROOT / "configs" / f"{name}.toml")
        assert Path(cli.config_path(name)).resolve() == expected.resolve()


def test_run_by_name_from_any_directory_with_progress_lines(tmp_path, monkeypatch, capsys):
    """Without a terminal, `gdlab run` shows its progress as plain lines on stderr; the results
    are the bundled config's (its α list, read here with tomllib)."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "q4_trajectories", "--out", "o"]) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    runs = [line for line in lines if PROGRESS_LINE.match(line)]
    edges = [EDGE_LINE.match(line) for line in lines[len(runs):]]
    assert runs and all(edges) and lines == runs + lines[len(runs):], captured.err
    assert PROGRESS_LINE.match(runs[-1]).group(1, 2) == ("3", "3")
    # the edge search's last line says every round it took, out of as many (the plan revised)
    assert edges and edges[-1].group(1) == edges[-1].group(2)
    assert "agreement with theory" in captured.out
    expected = tomllib.loads((ROOT / "configs" / "q4_trajectories.toml").read_text())
    with np.load(tmp_path / "o" / "results.npz") as z:
        np.testing.assert_array_equal(z["alpha"], np.float32(expected["sweep"]["alpha"]))
    assert sorted(os.listdir(tmp_path)) == ["o"]     # nothing else written here


def test_quiet_prints_only_the_results_line(tmp_path, capsys):
    out = tmp_path / "o"
    assert cli.main(["run", "q4_trajectories", "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    files = json.loads((out / "summary.json").read_text())["files"]
    assert captured.err == ""
    assert captured.out.splitlines() == [captured.out.strip()]       # one line
    assert captured.out.startswith(f"results: {out}/results.npz, {out}/summary.json")
    assert all(f"{out}/{f}" in captured.out for f in files if f.endswith(".png"))


def test_stage_lines_print_before_the_files_are_written(tmp_path, monkeypatch, capsys):
    """The sweep's and the comparison's lines are out while the plots are still being drawn."""
    seen = []
    draw = study._study_plots.draw
    monkeypatch.setattr(study._study_plots, "draw",
                        lambda *a, **k: seen.append(capsys.readouterr().out) or draw(*a, **k))
    assert cli.main(["run", "q4_trajectories", "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    before, after = seen[0], capsys.readouterr().out
    assert before.startswith("gdlab ") and "α = 2.5" in before
    assert "agreement with theory" in before and "simulated regimes" in before
    assert "results: " not in before and "results: " in after


def test_progress_is_one_plain_line_per_chunk_without_a_terminal(capsys):
    gdlab.sweep(gdlab.problems.scalar_regression(), np.linspace(0, 3, 50), steps=10,
                chunk_size=10, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(PROGRESS_LINE.match(line) for line in lines)
    assert lines[-1].startswith("50/50 runs (100 %)")
    bar = Progress(total=50, enabled=True, min_interval=0.0)     # unthrottled: every chunk
    for _ in range(5):
        bar.update(10, seconds=0.1)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert [line.split()[0] for line in lines] == ["10/50", "20/50", "30/50", "40/50", "50/50"]


def test_progress_is_a_tqdm_bar_on_a_terminal():
    class Terminal:
        text = ""

        def isatty(self):
            return True

        def write(self, s):
            Terminal.text += s

        def flush(self):
            pass

    bar = Progress(total=10, enabled=None, stream=Terminal(), work_per_unit=100)
    bar.update(10, seconds=0.5)
    bar.close()
    assert "\r|" in Terminal.text and "10/10 runs (100 %)" in Terminal.text


def test_bench_writes_no_json_unless_asked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["bench", "--n", "300", "--steps", "5", "--numpy-steps", "5",
                     "--repeats", "1"]) == 0
    assert "numpy+rec" in capsys.readouterr().out and os.listdir(tmp_path) == []


def test_wheel_holds_the_bundled_configs(tmp_path):
    """pip builds the wheel from a copy of the sources (offline, as the build backend would):
    every configs/*.toml is inside it as gdlab/configs/NAME.toml, the files' bytes unchanged."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "configs", src / "configs")
    shutil.copytree(ROOT / "gdlab", src / "gdlab", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "--no-index", "-q", str(src),
                            "-w", str(tmp_path / "dist")],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-3000:]   # setuptools >= 77: the test extra
    (wheel,) = (tmp_path / "dist").glob("gdlab-*.whl")
    with zipfile.ZipFile(wheel) as z:
        shipped = {n: z.read(n) for n in z.namelist() if n.startswith("gdlab/configs/")}
    expected = {f"gdlab/configs/{p.name}": p.read_bytes()
                for p in (ROOT / "configs").glob("*.toml")}
    assert shipped == expected and len(expected) >= 10


def test_a_misspelt_top_level_option_is_named(capsys):
    """`gdlab --versoin` used to say "the following arguments are required: COMMAND"."""
    with pytest.raises(SystemExit) as exc:
        cli.main(["--versoin"])
    assert exc.value.code == 2
    assert capsys.readouterr().err == ("gdlab: error: unrecognized arguments: --versoin "
                                       "(see gdlab --help)\n")


@pytest.mark.parametrize("argv", [["run", "q4_trajectories", "--out", ""],
                                  ["export", "runs/anything", "--out", " "]])
def test_an_empty_out_is_refused_not_taken_for_the_default(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err == "gdlab: error: --out: is empty; give a path, e.g. --out runs/mine\n"
    assert not any(tmp_path.iterdir())
