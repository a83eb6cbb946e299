"""``python -m netxray``: the ``netxray`` command (the same entry point as the console script)."""

import sys

from netxray.cli import main

if __name__ == "__main__":
    sys.exit(main())
