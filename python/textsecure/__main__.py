"""``python -m textsecure``: the ``textsecure`` command (``textsecure.cli``, ``docs/cli.md``)."""

from __future__ import annotations

import sys

from textsecure.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
