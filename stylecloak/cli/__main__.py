"""``python -m stylecloak.cli``: the same as the ``stylecloak`` command."""

import sys

from . import main

sys.exit(main())
