"""``python -m dothi``: the same as the ``dothi`` console script."""

import sys

from dothi.cli import main

sys.exit(main())
