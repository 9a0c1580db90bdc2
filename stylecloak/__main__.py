"""``python -m stylecloak``: the same as the ``stylecloak`` command."""

import sys

from .cli import main

sys.exit(main())
