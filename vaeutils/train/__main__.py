"""``python -m vaeutils.train``: the trainer's command line (``vaeutils.train.cli``)."""

import sys

from .cli import main

sys.exit(main())
