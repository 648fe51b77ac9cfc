"""The ``gdlab`` command line.

    gdlab run CONFIG [--set KEY=VALUE]... [--out DIR] [--overwrite] [--no-progress | --quiet]
              [--distributed] [--coordinator HOST:PORT --num-processes N --process-id I]
    gdlab merge SHARD_DIR... --out DIR [--overwrite] [--no-progress | --quiet]
    gdlab view RUN_DIR|CONFIG [--port N] [--host ADDR] [--resolution N] [--set KEY=VALUE]...
    gdlab list
    gdlab bench [--n N] [--steps T] ... [--json PATH]
    gdlab --version
    gdlab                # the commands

CONFIG is a file, or the bare name of a config shipped with gdlab (``gdlab run q4_alpha_sweep``,
from any directory). A run prints each stage's lines as the stage finishes, on stdout, and its
progress on stderr (a bar on a terminal, a plain line per chunk in a log); ``--quiet`` prints only
the last line, naming the results written.

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
import shutil
import sys
import textwrap
import traceback
from pathlib import Path

from gdlab._args import EXIT_BAD_INPUT, EXIT_BUG, ArgumentParser, CommandParser
from gdlab._bundled import bundled_configs, config_path, runnable_name
from gdlab.errors import GdlabError

__all__ = ["main", "bundled_configs", "compile_cache", "default_out"]


def _header(path: Path) -> str:
    """The first sentence of a config's leading comment (before its ``Command:``-style labels):
    what it runs."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        return f"(unreadable: {getattr(e, 'strerror', None) or type(e).__name__})"
    words = []
    for line in text.splitlines():
        body = line.lstrip("# ").strip() if line.startswith("#") else None
        if words and (body is None or not body or _LABEL.match(body)):
            break   # the first paragraph of the leading comment has ended
        if body:
            words.append(body)
    return _printable(_SENTENCE_END.split(" ".join(words), maxsplit=1)[0])


_LABEL = re.compile(r"[A-Z][\w ]{0,15}:\s")          # "Command:  …", "GPU size: …"
_SENTENCE_END = re.compile(r"(?<=\.)\s+(?=[A-Z])")   # ". The …", not "al. 2021"


def _cmd_list(args) -> int:
    from gdlab import optimizers, problems
    print("configs (gdlab run NAME):")
    for p in bundled_configs():
        lines = textwrap.wrap(_header(p), width=max(40, shutil.get_terminal_size().columns - 33))
        print(f"  {runnable_name(p):<28} {lines[0] if lines else ''}")
        for more in lines[1:]:
            print(f"  {'':<28} {more}")
    print("problems:")
    for name, spec in problems.PROBLEMS.items():
        print(f"  {name:<24} {spec.summary}")
        keys = ", ".join(f"{k} = {p.default!r}" + (" (sweepable)" if p.sweepable else "")
                         for k, p in spec.params.items())
        print(f"  {'':<24}   keys: {keys}")
    print(f"  {'custom':<24} your own loss, from a config: loss = \"module:function\" "
          "(README, \"Your own loss\")")
    print(f"  {'':<24}   keys: loss, optimum (optional), w0, and the function's number-valued "
          "parameters")
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
    path = config_path(args.config)
    cfg = config_lib.load(path, args.set or [])
    if args.distributed and isinstance(cfg, config_lib.SweepConfig):
        _check_shared(cfg)
    out = _out(args.out) if args.out is not None else default_out(path)
    rundir.check_target(out, args.overwrite, protect=[Path(path).parent])
    writer = distributed.is_writer()  # process 0 prints, and writes (rundir)
    progress, log = _output(args, writer)
    compile_cache()
    if isinstance(cfg, config_lib.GradientsConfig):
        from gdlab.gradients.study import GradientCheckFailed, run_gradient_study
        try:
            run_gradient_study(cfg, out, overwrite=args.overwrite, log=log)
        except GradientCheckFailed as e:  # written: the failed checks are in the results
            log.flush()
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
    log.flush()
    if not writer:
        print(f"gdlab: process {distributed.process_index()} of {distributed.process_count()} "
              f"done; process 0 writes {out}")
    return 0


def _check_shared(cfg) -> None:
    """Under ``--distributed`` the processes share one sweep: ``run.devices`` is "all" (the
    default: every process's devices) or their number. With several processes a smaller count is
    refused in one line: up to one process's own devices every process would simulate every run
    (the engine allows that, for a script whose processes each sweep alone), and above it the
    mesh would leave some devices out. A count above all of them is the engine's to refuse."""
    import jax

    from gdlab import distributed
    from gdlab.config import ConfigError
    processes, total = distributed.process_count(), len(jax.devices())
    if processes > 1 and cfg.devices != "all" and cfg.devices < total:
        raise ConfigError(f"{cfg.path}: run.devices: {cfg.devices} is fewer than the {total} "
                          f"devices of the {processes} processes that --distributed shares the "
                          f"sweep among; set \"all\" (the default) or {total}")


class _Log:
    """The lines a run prints on stdout as its stages finish; with ``--quiet`` only the last one,
    which says where the results were written, printed by :meth:`flush` once the run is done."""

    def __init__(self, *, quiet: bool = False, silent: bool = False) -> None:
        self.quiet, self.silent, self.last = quiet, silent, None

    def __call__(self, line: str) -> None:
        if self.silent:
            return
        if self.quiet:
            self.last = line
        else:
            print(line, flush=True)

    def flush(self) -> None:
        if self.last is not None:
            print(self.last, flush=True)
            self.last = None


def _output(args: argparse.Namespace, writer: bool = True) -> tuple[bool, _Log]:
    """``progress`` and ``log`` for a run: progress (a bar on a terminal, plain lines in a log)
    unless ``--no-progress`` or ``--quiet``; under jax.distributed process 0 alone prints."""
    return (writer and not (args.no_progress or args.quiet),
            _Log(quiet=args.quiet, silent=not writer))


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
    out = _out(args.out)
    rundir.check_target(out, args.overwrite, protect=[Path(d) for d in args.shards])
    cfg, simulation = merge(args.shards)
    compile_cache()
    progress, log = _output(args)
    run_sweep_study(cfg, out, overwrite=args.overwrite, simulation=simulation,
                    progress=progress, log=log)
    log.flush()
    return 0


def _cmd_plot(args) -> int:
    from gdlab.replot import replot
    written = replot(Path(args.run_dir))
    print("redrawn from the stored results: "
          + ", ".join(f"{args.run_dir}/{f}" for f in written if f.endswith((".png", ".html"))))
    return 0


def _cmd_view(args) -> int:
    from gdlab import view
    view.check_port(args.port, "--port")   # bad input: one line before anything is simulated
    view.check_host(args.host, "--host")
    view.check_resolution(args.resolution, "--resolution")
    view.serve(args.target, port=args.port, host=args.host, resolution=args.resolution,
               sets=args.set, announce=lambda line: print(line, flush=True))
    return 0


def _cmd_export(args) -> int:
    from gdlab.dataset import export
    target = None if args.out is None else _out(args.out)
    print(f"wrote {export(args.run_dir, args.to, target, overwrite=args.overwrite)}")
    return 0


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="never show progress")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print only errors and, once written, the line naming the results "
                             "(no progress, no tables)")


class _Version(argparse.Action):
    """``--version``: gdlab's and JAX's versions, read from the installed packages' metadata
    (without importing JAX, which takes a second)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        import gdlab
        print(f"gdlab {gdlab.__version__} (jax {_installed('jax')}, "
              f"Python {sys.version.split()[0]})")
        parser.exit(0)


def _installed(name: str) -> str:
    from importlib import metadata
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="gdlab", description="Gradient-descent dynamics lab.",
                            epilog="gdlab COMMAND --help shows a command's options.")
    parser.add_argument("--version", action=_Version, help="show the versions of gdlab and JAX")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=CommandParser,
                                title="commands", metavar="COMMAND")
    run = sub.add_parser("run", help="run an experiment config")
    run.add_argument("config", help="a bundled config's name (gdlab list shows them, e.g. "
                                    "q4_alpha_sweep) or a TOML file's path")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a config key (VALUE is a TOML literal), repeatable")
    run.add_argument("--out", help="run directory (default: runs/<config name>)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    _output_options(run)
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
    _output_options(merge)
    merge.set_defaults(func=_cmd_merge)
    plot = sub.add_parser("plot", help="redraw a run directory's plots and report.html from its "
                                       "stored results, without simulating")
    plot.add_argument("run_dir", help="a run directory that gdlab run or gdlab merge wrote")
    plot.set_defaults(func=_cmd_plot)
    sub.add_parser("bench", help="benchmark the engine against NumPy (gdlab bench --help)")
    lst = sub.add_parser("list", help="list bundled configs, problems and optimizers")
    lst.set_defaults(func=_cmd_list)
    export = sub.add_parser("export", help="write a run's results as netCDF or a CSV table")
    export.add_argument("run_dir", help="a run directory that gdlab run wrote")
    export.add_argument("--to", choices=("netcdf", "csv"),
                        help="netcdf: the xarray Dataset of gdlab.load (netCDF-4); csv: one row "
                             "per run (default: from --out's suffix: .csv, or .nc and other "
                             "netCDF names)")
    export.add_argument("--out", metavar="PATH", help="the file to write (default: "
                        "RUN_DIR/results.nc or RUN_DIR/results.csv)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing file")
    export.set_defaults(func=_cmd_export)
    view = sub.add_parser("view", help="serve a run's map in the browser; zooming re-simulates "
                                       "the visible window")
    view.add_argument("target", metavar="RUN_DIR|CONFIG",
                      help="a run directory, or a config (simulated first, kept in memory)")
    view.add_argument("--port", type=int, default=5006,
                      help="port to listen on (default 5006; 0: any free port)")
    view.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    view.add_argument("--resolution", type=int, default=200, metavar="N",
                      help="at most N runs per axis when a zoomed window is simulated (default "
                           "200)")
    view.add_argument("--set", action="append", metavar="KEY=VALUE",
                      help="override a key of CONFIG (as for gdlab run), repeatable")
    view.set_defaults(func=_cmd_view)
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


def _out(value: str) -> Path:
    """``--out``'s path; an empty one is refused (it used to mean the default silently)."""
    if not value.strip():
        from gdlab.errors import ArgumentError
        raise ArgumentError("--out", "is empty; give a path, e.g. --out runs/mine")
    return Path(value)


def main(argv: list[str] | None = None) -> int:
    """The command line in this thread; returns the exit status (``gdlab._launch.entry`` handles
    signals)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:  # what can I do here? — the commands, as gdlab --help shows them
        _parser().print_help()
        return 0
    if argv[:1] == ["bench"]:  # its own options: gdlab bench --help; compile times are cold
        from gdlab import bench
        return bench.main(argv[1:])
    parser = _parser()
    if argv[0].startswith("-") and not (argv[0] == "-h" or len(argv[0]) > 2 and any(
            option.startswith(argv[0]) for option in ("--help", "--version"))):
        parser.error(f"unrecognized arguments: {argv[0]}")   # not "COMMAND is required"
    args = parser.parse_args(argv)
    if args.func is _cmd_run:
        _check_cluster(parser, args)
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
