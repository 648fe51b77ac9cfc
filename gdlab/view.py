"""``gdlab view RUN_DIR | CONFIG``: a run's regime map in the browser, re-simulated on zoom.

A Bokeh server (:class:`bokeh.server.server.Server`) inside the gdlab process, bound to
127.0.0.1 (``--host`` to change), ``--port N`` (0: any free port). The first line of stdout is
the address, ``http://127.0.0.1:PORT/``; the server answers until interrupted (Ctrl-C: exit 130
through :mod:`gdlab._launch`). The document is :mod:`gdlab._view_app`'s; the numbers are
:mod:`gdlab._view_data`'s.

``gdlab view CONFIG`` (a file or a bundled name, ``--set`` overrides as for ``gdlab run``) first
runs the config into a temporary run directory, loads it into memory (:func:`gdlab.load`) and
removes the directory before serving: nothing is left on disk.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, Callable

from gdlab.errors import ArgumentError, OutputError

__all__ = ["serve", "open_target", "check_port", "check_host", "check_resolution", "DEFAULT_PORT",
           "DEFAULT_RESOLUTION"]

DEFAULT_PORT = 5006          # Bokeh's own default
DEFAULT_RESOLUTION = 200     # at most this many runs per axis per re-simulated window


def check_port(port: int, name: str = "port") -> int:
    """``port`` if it is a TCP port number, 0 (any free port) to 65535; ArgumentError naming
    ``name`` (``--port`` on the command line) otherwise."""
    if not 0 <= port <= 65535:
        raise ArgumentError(name, f"{port} is not a port number; give 0 (any free port) to 65535")
    return port


def check_host(host: str, name: str = "host") -> str:
    """``host`` if this machine can listen on it (a name that resolves to one of its addresses);
    ArgumentError naming ``name`` (``--host`` on the command line) otherwise."""
    fix = ("give one of its addresses, e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every "
           "interface)")
    if not host.strip():
        raise ArgumentError(name, f"empty; {fix}")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.bind((host, 0))
    except (OSError, UnicodeError) as e:   # a name that does not resolve, a foreign address;
        why = (e.strerror if isinstance(e, OSError) else None) or str(e)   # an IDNA error
        raise ArgumentError(name, f"{host!r}: this machine cannot listen there ({why}); {fix}") \
            from None
    return host


def check_resolution(n: int, name: str = "resolution") -> int:
    """``n`` if 2 ≤ n ≤ 1000 runs per axis of a re-simulated window; ArgumentError naming
    ``name`` (``--resolution`` on the command line) otherwise."""
    if not 2 <= n <= 1000:
        raise ArgumentError(name, f"{n} runs per axis is out of range; give 2 to 1000")
    return n


def open_target(target: str, sets: list[str] | None = None,
                log: Callable[[str], None] = lambda line: None) -> tuple[Any, str]:
    """(the xarray Dataset, a title) of ``target``: a run directory, or a config simulated first."""
    import gdlab
    from gdlab._bundled import config_path
    path = Path(target)
    if path.is_dir():
        if sets:
            raise ArgumentError("--set", f"--set {sets[0]}: --set applies to a CONFIG, not to "
                                         f"the run directory {target}; drop it, or view the "
                                         "config itself with --set", prefix=False)
        return gdlab.load(path), path.name
    config = config_path(target)
    if not (Path(config).is_file() and config.endswith(".toml")):
        raise ArgumentError("target", f"{target}: neither a run directory nor a config (a .toml "
                                      "file or a bundled name: gdlab list)", prefix=False)
    return _simulated(config, sets or [], log), Path(config).stem


def _simulated(config: str, sets: list[str], log: Callable[[str], None]) -> Any:
    from gdlab import config as config_lib
    from gdlab.dataset import load
    from gdlab.study import run_sweep_study
    cfg = config_lib.load(config, sets)
    if not isinstance(cfg, config_lib.SweepConfig):
        raise ArgumentError("target", f"{config}: a gradient check, not a sweep; gdlab view "
                                      "shows sweep maps", prefix=False)
    if cfg.track is not None:
        raise ArgumentError("target", f"{config}: an edge-of-stability run ([track]), not a map; "
                                      "gdlab view shows sweep maps", prefix=False)
    parent = Path(tempfile.mkdtemp(prefix="gdlab-view-"))
    try:
        run_sweep_study(cfg, parent / "run", progress=False, log=log)
        return load(parent / "run")
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def _free_port(host: str) -> int:
    """A port free on ``host`` now (Bokeh's allowed websocket origin must name the real port)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def serve(target: str, *, port: int = DEFAULT_PORT, host: str = "127.0.0.1",
          resolution: int = DEFAULT_RESOLUTION, sets: list[str] | None = None,
          announce: Callable[[str], None] = print, log: Callable[[str], None] = lambda s: None,
          ready: Callable[[Any], None] | None = None) -> None:
    """Serve the map of ``target`` until the process is interrupted (``ready(server)``: called
    once it listens, e.g. to stop it from a test)."""
    from bokeh.application import Application
    from bokeh.application.handlers.function import FunctionHandler
    from bokeh.server.server import Server
    from tornado.ioloop import IOLoop

    from gdlab import _view_app, _view_data
    check_port(port)
    check_host(host)
    check_resolution(resolution)
    ds, title = open_target(target, sets, log)
    spec = _view_data.spec_from_run(ds)
    first = _view_data.initial_window(ds, spec)
    asyncio.set_event_loop(asyncio.new_event_loop())    # this thread's own loop
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sim")
    app = Application(FunctionHandler(_view_app.make_document(spec, first, executor,
                                                              resolution, title)))
    port = port or _free_port(host)
    try:
        server = Server({"/": app}, port=port, address=host, io_loop=IOLoop.current(),
                        allow_websocket_origin=[f"{host}:{port}", f"localhost:{port}"])
    except OSError as e:
        why = "in use" if e.errno == errno.EADDRINUSE else (e.strerror or str(e))
        raise OutputError(f"{host}:{port}: cannot listen ({why}); choose another --port, or "
                          "--port 0 for any free one") from None
    server.start()
    announce(f"http://{host}:{port}/")
    if ready is not None:
        ready(server)
    try:
        server.io_loop.start()
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
