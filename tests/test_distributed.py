"""One sweep over two processes with jax.distributed (CPU backend, gloo collectives): the run
directory equals a single-process run's, bit for bit; process 0 alone writes and prints; bad
cluster options are one line and exit 2, before any work."""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from gdlab import cli, distributed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
Q4 = os.path.join(ROOT, "configs", "q4_alpha_sweep.toml")
MOMENTUM = os.path.join(ROOT, "configs", "momentum_alpha_beta.toml")
# 257 runs and 23 × 7 = 161: run counts that 2 or 4 devices do not divide
Q4_SMALL = ["--set", "sweep.alpha.num=257", "--set", "run.steps=100"]
MOMENTUM_SMALL = ["--set", "sweep.alpha.num=23", "--set", "sweep.beta.num=7",
                  "--set", "run.steps=60"]


def _gloo() -> bool:
    from jax._src.lib import _jax
    return hasattr(_jax, "make_gloo_tcp_collectives")


pytestmark = pytest.mark.skipif(not _gloo(), reason="this jaxlib has no gloo CPU collectives")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(config, sets, out, devices_per_process):
    """Two processes of ``gdlab run`` sharing one coordinator on the loopback."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "OMPI_"))}
    env.update(JAX_NUM_CPU_DEVICES=str(devices_per_process), JAX_PLATFORMS="cpu",
               GDLAB_CACHE_DIR="")
    return [subprocess.Popen(
        [sys.executable, "-m", "gdlab", "run", config, *sets, "--out", str(out), "--no-progress",
         "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (0, 1)]


def _communicate(procs):
    """(stdout, stderr) of every process, each waited for at most 120 s; none is left running."""
    try:
        return [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def _finish(procs):
    outs = _communicate(procs)
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    # gloo itself prints a line when it connects ("[Gloo] Rank 0 is connected to 1 peer ranks")
    return ["".join(line for line in out.splitlines(keepends=True)
                    if not line.startswith("[Gloo] ")) for out, _ in outs]


def _same_run(a, b, devices):
    """results.npz bit for bit, summary.json but its timings and device; ``b`` (the distributed
    run) saw ``devices`` devices: those of every process (of one, if jax.distributed had not
    joined them)."""
    x, y = (np.load(d / "results.npz", allow_pickle=False) for d in (a, b))
    assert sorted(x.files) == sorted(y.files)
    for k in x.files:
        assert x[k].dtype == y[k].dtype and x[k].tobytes() == y[k].tobytes(), k
    sx, sy = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert sy["device"]["count"] == devices
    assert [k for k in sx if sx[k] != sy[k]] in (["device", "timings"], ["timings"])


def test_two_processes_equal_one(tmp_path, capsys):
    procs = _launch(Q4, Q4_SMALL, tmp_path / "dist", 1)
    # the single-process run meanwhile, here, on this process's devices (run.devices = "all",
    # the default, as under --distributed)
    assert cli.main(["run", Q4, *Q4_SMALL, "--no-progress", "--out", str(tmp_path / "single")]) == 0
    single_out = capsys.readouterr().out
    out0, out1 = _finish(procs)
    _same_run(tmp_path / "single", tmp_path / "dist", 2)
    # process 0 prints the study, process 1 one line
    assert (out0.replace(str(tmp_path / "dist"), "").splitlines()[:-2]
            == single_out.replace(str(tmp_path / "single"), "").splitlines()[:-2])
    assert out1 == f"gdlab: process 1 of 2 done; process 0 writes {tmp_path / 'dist'}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist", "single"]
    # against the closed form, written from the maths: GD on ½(xw − y)², x = 1, y = 100, w0 = 0
    # has |w_T − w*| = 100·|1 − α|^T. Tolerance: float32 rounds w near w* = 100 to ~8e-6 per
    # step; 100 steps of that stay below 1e-3 (absolute), and 1e-4 relative covers the rest.
    res = np.load(tmp_path / "dist" / "results.npz")
    alpha, final = res["alpha"], res["final_error"]
    stable = np.abs(1 - alpha) < 0.99
    np.testing.assert_allclose(final[stable], 100 * np.abs(1 - alpha[stable]) ** 100,
                               rtol=1e-4, atol=1e-3)


def test_two_processes_two_devices_each_on_a_2d_map(tmp_path, capsys):
    procs = _launch(MOMENTUM, MOMENTUM_SMALL, tmp_path / "dist", 2)
    assert cli.main(["run", MOMENTUM, *MOMENTUM_SMALL, "--no-progress",
                     "--out", str(tmp_path / "single")]) == 0
    capsys.readouterr()
    _finish(procs)
    _same_run(tmp_path / "single", tmp_path / "dist", 4)


@pytest.mark.parametrize("devices", ["1", "3"])
def test_a_count_that_does_not_span_the_processes_is_refused(tmp_path, devices):
    # A config file's own `[run] devices = k` is read as written, not replaced by "all". Two
    # processes of two devices: 1 would have each simulate every run, 3 leave one device out. One
    # line from each process, before any work; nothing written.
    config = tmp_path / "q4.toml"
    config.write_text(open(Q4).read().replace("[run]", f"[run]\ndevices = {devices}", 1))
    procs = _launch(str(config), Q4_SMALL, tmp_path / "dist", 2)
    outs = _communicate(procs)
    message = (f"gdlab: error: {config}: run.devices: {devices} is fewer than the 4 devices of "
               f"the 2 processes that --distributed shares the sweep among; set \"all\" (the "
               f"default) or 4\n")
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 2 and err == message, err
    assert not (tmp_path / "dist").exists()


@pytest.mark.parametrize("flags, message", [
    (["--coordinator", "localhost", "--num-processes", "2", "--process-id", "0"],
     "--coordinator: 'localhost' must be HOST:PORT with a port in 1..65535"),
    (["--coordinator", "127.0.0.1:70000", "--num-processes", "2", "--process-id", "0"],
     "--coordinator: '127.0.0.1:70000' must be HOST:PORT"),
    (["--coordinator", "127.0.0.1:1234", "--num-processes", "2", "--process-id", "2"],
     "--process-id: 2 must be below --num-processes (2): the ids are 0..1"),
    (["--coordinator", "127.0.0.1:1234", "--num-processes", "0", "--process-id", "0"],
     "--num-processes: 0 must be an integer >= 1"),
    (["--coordinator", "127.0.0.1:1234", "--num-processes", "1000000000", "--process-id", "0"],
     "--num-processes: 1000000000 processes is more than gdlab starts (65536"),
    (["--coordinator", "127.0.0.1:1234", "--process-id", "1"],
     "--num-processes: missing: --coordinator, --num-processes and --process-id go together"),
    (["--distributed", "--process-id", "1"],
     "--coordinator: missing: --coordinator, --num-processes and --process-id go together"),
])
def test_bad_cluster_options_are_one_line(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as stop:
        cli.main(["run", Q4, *flags, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "x").exists()


def test_initialize_after_jax_started_is_one_line(monkeypatch):
    # Told up front, from JAX's state, not from the words of JAX's refusal: JAX is not asked.
    jax.devices()  # JAX's backends are up in this process
    asked = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: asked.append(kw))
    with pytest.raises(distributed.DistributedError,
                       match="^jax.distributed cannot start: JAX had already started in this "
                             "process .*: initialize before any other JAX use$"):
        distributed.initialize("127.0.0.1:1234", 2, 0)
    assert asked == []
    assert not jax.distributed.is_initialized() and distributed.is_writer()
    assert (distributed.process_index(), distributed.process_count()) == (0, 1)


def test_without_jaxs_private_check_its_refusal_gives_the_hint(monkeypatch):
    # A JAX without xla_bridge.backends_are_initialized: JAX itself refuses, and its words are read
    jax.devices()
    monkeypatch.setattr(distributed, "_backends_started", lambda: None)
    collectives = jax.config.jax_cpu_collectives_implementation
    try:
        with pytest.raises(distributed.DistributedError,
                           match=r"^jax.distributed did not start \(.*before any JAX.*\); JAX had "
                                 "already started in this process"):
            distributed.initialize("127.0.0.1:1234", 2, 0)
    finally:
        jax.config.update("jax_cpu_collectives_implementation", collectives)
    assert not jax.distributed.is_initialized()
