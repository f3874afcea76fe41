"""``python -m simulators …`` = ``dothi simulate …``."""

import sys

from simulators.cli import main

sys.exit(main(sys.argv[1:]))
