"""The ``gdlab`` command line.

    gdlab run CONFIG [--set KEY=VALUE]... [--out DIR] [--overwrite] [--no-progress]
              [--distributed] [--coordinator HOST:PORT --num-processes N --process-id I]
    gdlab merge SHARD_DIR... --out DIR [--overwrite]
    gdlab list
    gdlab bench [--n N] [--steps T] ...

Bad input (config, override, output directory) prints one line ``gdlab: error: …`` and exits 2,
before any work and before anything is created (the compilation cache included).

The console script (``gdlab._launch.entry``) runs :func:`main` in a worker thread, so SIGINT and
SIGTERM end a run at once, whatever it is doing (importing JAX, compiling, inside a long compiled
chunk): the partial run directory is removed, one line is printed, and the exit status is 130 (143).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from pathlib import Path

from gdlab import _cores
from gdlab._args import EXIT_BAD_INPUT, EXIT_BUG, ArgumentParser
from gdlab.errors import GdlabError

__all__ = ["main", "bundled_configs", "compile_cache", "default_out"]



def bundled_configs() -> list[Path]:
    """Configs shipped in the repository's ``configs/`` (next to the package) and ./configs."""
    roots = [Path(__file__).resolve().parent.parent / "configs", Path.cwd() / "configs"]
    seen, out = set(), []
    for root in roots:
        for p in sorted(root.glob("*.toml")) if root.is_dir() else []:
            if p.is_file() and p.resolve() not in seen:
                seen.add(p.resolve())
                out.append(p)
    return out


def _header(path: Path) -> str:
    """The first comment line of a config: what it runs."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        return f"(unreadable: {getattr(e, 'strerror', None) or type(e).__name__})"
    for line in text.splitlines():
        if line.startswith("#"):
            return _printable(line.lstrip("# ").strip())
    return ""


def _cmd_list(args) -> int:
    from gdlab import optimizers, problems
    print("configs:")
    for p in bundled_configs():
        try:
            shown = p.relative_to(Path.cwd())
        except ValueError:
            shown = p
        print(f"  {str(shown):<40} {_header(p)}")
    print("problems:")
    for name, spec in problems.PROBLEMS.items():
        print(f"  {name:<24} {spec.summary}")
        keys = ", ".join(f"{k} = {p.default!r}" + (" (sweepable)" if p.sweepable else "")
                         for k, p in spec.params.items())
        print(f"  {'':<24}   keys: {keys}")
    print("optimizers:")
    for name, spec in optimizers.OPTIMIZERS.items():
        print(f"  {name:<24} {spec.summary}")
    print(f"  {'(any optax optimizer)':<24} e.g. rmsprop, adagrad, lion: "
          "its numeric arguments are keys")
    return 0


def _cmd_run(args) -> int:
    from gdlab import config as config_lib
    from gdlab import distributed, rundir

    if args.distributed:  # before anything starts JAX's backends (building a network does)
        distributed.initialize(*args.cluster)
    cfg = config_lib.load(args.config, args.set or [])
    if args.distributed and isinstance(cfg, config_lib.SweepConfig):
        # every process's devices, unless a --set of the user's says otherwise
        cfg = config_lib.load(args.config, ['run.devices="all"', *(args.set or [])])
    out = Path(args.out) if args.out else default_out(args.config)
    rundir.check_target(out, args.overwrite, protect=[Path(args.config).parent])
    writer = distributed.is_writer()
    progress = False if args.no_progress or not writer else None
    log = print if writer else (lambda line: None)  # process 0 prints, and writes (rundir)
    compile_cache()
    if isinstance(cfg, config_lib.GradientsConfig):
        from gdlab.gradients.study import GradientCheckFailed, run_gradient_study
        try:
            run_gradient_study(cfg, out, overwrite=args.overwrite, log=log)
        except GradientCheckFailed as e:
            print(f"gdlab: {e}", file=sys.stderr)
            return 1
    else:
        from gdlab.errors import ArgumentError
        from gdlab.study import run_sweep_study
        try:
            run_sweep_study(cfg, out, overwrite=args.overwrite, progress=progress, log=log)
        except ArgumentError as e:  # the config passed its own checks; these are about its values
            raise config_lib.ConfigError(
                f"{cfg.path}: {config_lib.config_key(cfg, e.argument)}: {e.detail}") from None
    if not writer:
        print(f"gdlab: process {distributed.process_index()} of {distributed.process_count()} "
              f"done; process 0 writes {out}")
    return 0


def _check_cluster(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``args.cluster``: the checked ``--coordinator``, ``--num-processes``, ``--process-id``
    (all three or none; any implies ``--distributed``); a bad one is one line and exit 2."""
    from gdlab.distributed import check_cluster
    from gdlab.errors import ArgumentError
    try:
        cluster = check_cluster(args.coordinator, args.num_processes, args.process_id,
                                names=("--coordinator", "--num-processes", "--process-id"))
    except ArgumentError as e:
        parser.error(str(e))
    args.distributed = args.distributed or cluster is not None
    args.cluster = cluster or ()


def _cmd_merge(args) -> int:
    from gdlab import rundir
    from gdlab.shards import merge
    from gdlab.study import run_sweep_study
    out = Path(args.out)
    rundir.check_target(out, args.overwrite, protect=[Path(d) for d in args.shards])
    cfg, simulation = merge(args.shards)
    compile_cache()
    run_sweep_study(cfg, out, overwrite=args.overwrite, simulation=simulation,
                    progress=False if args.no_progress else None)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="gdlab", description="Gradient-descent dynamics lab.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    run = sub.add_parser("run", help="run an experiment config")
    run.add_argument("config", help="a TOML config, e.g. configs/q4_alpha_sweep.toml")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a config key (VALUE is a TOML literal), repeatable")
    run.add_argument("--out", help="run directory (default: runs/<config name>)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    run.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    run.add_argument("--distributed", action="store_true",
                     help="one sweep over several processes or hosts (jax.distributed, from "
                          "SLURM or Open MPI, or the three options below); process 0 writes")
    run.add_argument("--coordinator", metavar="HOST:PORT",
                     help="process 0's address (implies --distributed)")
    run.add_argument("--num-processes", type=int, metavar="N", help="how many processes")
    run.add_argument("--process-id", type=int, metavar="I", help="this process, 0..N-1")
    run.set_defaults(func=_cmd_run)
    merge = sub.add_parser("merge",
                           help="merge shard run directories (gdlab run --set sweep.shard=i/n)")
    merge.add_argument("shards", nargs="+", help="the shard directories, in any order")
    merge.add_argument("--out", required=True, help="the merged run directory")
    merge.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    merge.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    merge.set_defaults(func=_cmd_merge)
    sub.add_parser("bench", help="benchmark the engine against NumPy (gdlab bench --help)")
    lst = sub.add_parser("list", help="list bundled configs, problems and optimizers")
    lst.set_defaults(func=_cmd_list)
    return parser


def default_out(config: str) -> Path:
    """``runs/<config name>``; a name that is no directory name (``..toml``) needs --out."""
    stem = Path(config).stem
    if stem in ("", ".", ".."):
        from gdlab.errors import OutputError
        raise OutputError(f"{config}: its name gives no run directory name; pass --out DIR")
    return Path("runs") / stem


def _printable(text: str) -> str:
    """``text`` with control characters (newlines, ANSI escapes) shown escaped, never raw."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", lambda m: m[0].encode("unicode_escape").decode(), text)


def compile_cache() -> str | None:
    """JAX's persistent compilation cache, so that running a config again (any α values of the same
    shapes) loads its programs instead of compiling them: ~1 s → ~0.3 s for the main job on a CPU,
    several seconds on a GPU. In ``$GDLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/gdlab/jax`` (default
    ``~/.cache``); ``GDLAB_CACHE_DIR=`` (empty) switches it off, and a cache the user configured for
    JAX (``JAX_COMPILATION_CACHE_DIR``) is left alone. Returns the directory used, or None."""
    import jax
    if os.environ.get("JAX_COMPILATION_CACHE_DIR") or jax.config.jax_compilation_cache_dir:
        return jax.config.jax_compilation_cache_dir
    path = os.environ.get("GDLAB_CACHE_DIR")
    if path is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "gdlab", "jax")
    if not path:
        return None
    # JAX creates the folder at its first write, after the input was checked: a refused run
    # creates nothing. A read-only home: compile every time, as without the cache.
    probe = Path(path).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not (probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)):
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    return path


def main(argv: list[str] | None = None) -> int:
    """The command line in this thread; returns the exit status (``gdlab._launch.entry`` handles
    signals)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # its own options: gdlab bench --help; compile times are cold
        _cores.use_every_core()
        from gdlab import bench
        return bench.main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if args.func is _cmd_run:
        _check_cluster(parser, args)
    if args.func is not _cmd_list:
        _cores.use_every_core()
    try:
        return args.func(args)
    except (GdlabError, MemoryError) as e:  # bad input (config, output, API) or too large
        if os.environ.get("GDLAB_DEBUG"):
            raise
        if isinstance(e, MemoryError):
            e = ("out of memory; make the sweep smaller (fewer runs or steps), or lower "
                 "$GDLAB_MEMORY_LIMIT so that large sweeps keep compact results")
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"gdlab: error: {_printable(first)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # e.g. `gdlab list | head`
        sys.stdout = open(os.devnull, "w")
        return 0
    except Exception:  # noqa: BLE001 — anything else is gdlab's fault, and said to be
        traceback.print_exc()
        print("gdlab: internal error: the traceback above is a bug in gdlab, not in your input; "
              "please report it", file=sys.stderr)
        return EXIT_BUG
    except KeyboardInterrupt:
        print("gdlab: interrupted; no run directory was written", file=sys.stderr)
        return 130
