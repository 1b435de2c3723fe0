"""``python -m restyle_lab.cli`` (torchrun starts one per rank)."""

import sys

from .parser import main

if __name__ == "__main__":
    sys.exit(main())
