"""Ctrl-C that works: SIGINT or SIGTERM at any moment ends ``gdlab run`` within seconds, with one
line, status 130 (143), no traceback, no output directory and no temporary litter.

Fault injection in subprocesses (the real console entry, ``python -m gdlab``), each wait bounded.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gdlab import rundir

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
GRACE_S = 10  # the run must be gone this long after the signal (it takes ~0.1 s)


def start(tmp_path, *extra):
    env = dict(os.environ, GDLAB_CACHE_DIR="", PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "gdlab", "run", str(CONFIGS / "q4_trajectories.toml"),
         "--out", str(tmp_path / "out"), "--no-progress", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)


SIGNALLED = [
    (signal.SIGINT, 0.0),    # as soon as gdlab's handlers are in place: while Python imports JAX
    (signal.SIGTERM, 2.5),   # compiling or inside the compiled loop
    (signal.SIGINT, 6.0),    # deep inside one long chunk (2·10⁹ steps)
]


def _wait_for_handlers(proc: subprocess.Popen, timeout: float = GRACE_S) -> None:
    """Until ``proc`` catches SIGTERM (bit 15 of SigCgt in /proc/PID/status), i.e. gdlab's entry
    has installed its handlers — no program can answer a signal that comes while the interpreter
    itself starts (SIGINT during Python's ``site`` import is a fatal error, status 1; it happened
    at a fixed 0.3 s on a loaded machine). Without /proc (not Linux), 0.3 s instead."""
    status = Path(f"/proc/{proc.pid}/status")
    if not status.exists():
        time.sleep(0.3)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        caught = next((int(line.split()[1], 16) for line in status.read_text().splitlines()
                       if line.startswith("SigCgt:")), 0)
        if caught >> (signal.SIGTERM - 1) & 1:
            return
        time.sleep(0.005)
    pytest.fail(f"gdlab installed no SIGTERM handler within {timeout} s")


def test_a_signal_ends_a_long_run_at_once(tmp_path):
    # The three runs start together (each in its own directory) and are signalled in turn, each at
    # its delay after the start: the test waits for the last delay once, not for their sum. At most
    # two of them run at a time after the first signal, one per core of a 2-core machine.
    runs = []
    try:
        for i, (sig, delay) in enumerate(SIGNALLED):
            (tmp_path / str(i)).mkdir()
            runs.append((tmp_path / str(i), sig, delay,
                         # one α: a grid with no cell has no float64 edge search, which at
                         # 2·10⁹ steps would be refused before any work (boundary.check_work)
                         start(tmp_path / str(i), "--set", "run.steps=2000000000",
                               "--set", "sweep.alpha=[0.5]")))
        started = time.monotonic()
        for where, sig, delay, proc in runs:
            _wait_for_handlers(proc)
            time.sleep(max(0.0, started + delay - time.monotonic()))
            proc.send_signal(sig)
            t0 = time.monotonic()
            try:
                out, err = proc.communicate(timeout=GRACE_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"still running {GRACE_S} s after {sig.name} at {delay} s")
            assert time.monotonic() - t0 < GRACE_S
            assert proc.returncode == 128 + sig, (delay, proc.returncode, err)
            assert err.strip().splitlines() == [
                f"gdlab: interrupted ({sig.name}); nothing was written"], delay
            assert sorted(p.name for p in where.iterdir()) == [], delay   # no run dir, no partial
    finally:
        for *_, proc in runs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def test_abandon_removes_the_partial_directory_and_refuses_the_commit(tmp_path):
    """A signal while the results are being written: the writer's directory is removed, and the
    rename into place never happens."""
    out = tmp_path / "t"
    with pytest.raises(KeyboardInterrupt):
        with rundir.run_directory(out, False) as tmp:
            (tmp / "results.npz").write_text("half")
            t = threading.Thread(target=rundir.abandon)
            t.start()
            t.join()
            assert not tmp.exists()
    assert list(tmp_path.iterdir()) == []
    rundir._STATE["abandoned"] = False   # this process goes on (the CLI would exit here)


def test_two_runs_to_one_target_lose_nothing(tmp_path):
    """Started 0.5 s apart with the same --out: one lands, the other is refused (up front, or at
    the rename, its results then kept beside) — never a silent replacement. Neither is signalled:
    a run left alone still finishes (the one that lands)."""
    first = start(tmp_path)
    time.sleep(0.5)
    second = start(tmp_path)
    results = [p.communicate(timeout=300) + (p.returncode,) for p in (first, second)]
    codes = sorted(rc for _, _, rc in results)
    assert codes == [0, 2], results
    assert not [e for _, e, _ in results if "Traceback" in e], results
    err = next(e for _, e, rc in results if rc == 2).strip().splitlines()
    assert len(err) == 1 and ("already exists" in err[0] or "appeared while" in err[0]), err
    assert rundir.is_gdlab_directory(tmp_path / "out")
    assert (tmp_path / "out" / "results.npz").exists()
    kept = [p for p in tmp_path.iterdir() if ".conflict-" in p.name]
    assert (len(kept) == ("appeared while" in err[0])
            and all((k / "results.npz").exists() for k in kept))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("argv,status", [(["--help"], 0), (["run", "--bogus"], 2),
                                         (["bench", "--steps", "x"], 2)])
def test_the_console_script_keeps_argparse_exit_status(argv, status):
    """argparse's SystemExit is raised in the worker thread; the process still ends with it."""
    code = f"import sys; sys.argv = ['gdlab', *{argv!r}]; from gdlab._launch import entry; entry()"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr
