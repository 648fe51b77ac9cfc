"""The ``gdlab`` console script: signals are handled from the first moment, the command runs beside.

This module imports nothing heavy (no JAX, no gdlab module) before the handlers are in place; the
command (:func:`gdlab.cli.main`) runs in a worker thread. The main thread only waits, so SIGINT or
SIGTERM is seen within 0.1 s even while the worker is inside compiled code, where Python runs no
handler. On a signal the partial run directory is removed, one line is printed and the process ends
with ``os._exit(128 + signal)`` — no half-torn-down JAX runtime, no traceback.
"""

import os
import signal
import sys
import threading

__all__ = ["entry"]

_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


def entry() -> None:
    received: list[int] = []
    for sig in _NAMES:
        signal.signal(sig, lambda signum, frame: received.append(signum))
    status: list[int] = []

    def work():
        from gdlab.cli import main
        try:
            status.append(main(sys.argv[1:]))
        except SystemExit as stop:  # argparse: --help (0), a bad option (2); lost in a thread
            code = stop.code
            if code is not None and not isinstance(code, int):
                print(code, file=sys.stderr)
                code = 1
            status.append(0 if code is None else code)

    worker = threading.Thread(target=work, name="gdlab", daemon=True)
    worker.start()
    while worker.is_alive() and not received:
        worker.join(0.1)
    if received:
        _end(received[0])
    sys.stdout.flush()
    sys.exit(status[0] if status else 1)  # no status: the worker raised (its traceback is shown)


def _end(signum: int) -> None:
    rundir = sys.modules.get("gdlab.rundir")
    if rundir is not None:  # only if the run got as far as writing
        rundir.abandon()
    line = f"gdlab: interrupted ({_NAMES.get(signum, signum)}); nothing was written\n"
    os.write(2, (("\n" if sys.stderr.isatty() else "") + line).encode())
    os._exit(128 + signum)
