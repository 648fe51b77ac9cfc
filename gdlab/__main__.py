"""``python -m gdlab`` is the ``gdlab`` command."""

from gdlab._launch import entry

entry()
