"""A user's object named by import path, ``"module:attribute"``, as configs name their losses.

The module is looked for next to the config file first (``module.py``, or ``pkg/mod.py`` for
``pkg.mod``), then on Python's path. Importing it runs the user's code — the point of naming a
loss — but nothing in a config is ever evaluated as code. Every failure is one
:class:`~gdlab.errors.ArgumentError` line naming what to fix.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path

from gdlab.errors import USER_CODE_ERRORS, ArgumentError, one_line

__all__ = ["resolve"]

_SPEC = re.compile(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)")


def resolve(spec: object, base: Path, argument: str) -> object:
    """The object ``spec`` = "module:attribute" names, the module resolved next to ``base``
    first."""
    m = _SPEC.fullmatch(spec) if isinstance(spec, str) else None
    if m is None:
        raise ArgumentError(argument, f"{spec!r} must be an import path \"module:function\", e.g. "
                                      "\"my_losses:rosenbrock\" (my_losses.py next to the config)")
    module_name, attr = m.group(1), m.group(2)
    module = _module(module_name, base, argument)
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ArgumentError(argument, f"module {module_name!r} ({_where(module)}) has no "
                                          f"attribute {attr!r}") from None
    return obj


def _module(name: str, base: Path, argument: str):
    path = Path(base, *name.split(".")).with_suffix(".py")
    try:
        if path.is_file():
            return _from_file(path.resolve())
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name is not None and name.startswith(e.name):
            raise ArgumentError(argument, f"no module {name!r}: neither {path} nor one on the "
                                          "Python path; put it next to the config") from None
        raise ArgumentError(argument, f"importing {name!r} failed: {one_line(e)}") from None
    except USER_CODE_ERRORS as e:  # whatever the user's module raises on import
        raise ArgumentError(argument, f"importing {name!r} failed: {one_line(e)}") from None


def _from_file(path: Path):
    """The module of the file ``path``, imported once per process under a name of its own."""
    key = "gdlab_user_" + hashlib.sha1(str(path).encode()).hexdigest()[:12] + "_" + path.stem
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[key]
        raise
    return module


def _where(module) -> str:
    return getattr(module, "__file__", None) or module.__name__
