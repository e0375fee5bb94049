"""``python -m graphc``: the same as the ``graphc`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
