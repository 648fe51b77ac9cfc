"""``python -m gdlab`` is the ``gdlab`` command."""

import sys

from gdlab.cli import main

sys.exit(main())
