"""Progress lines on stderr for the training modules (``train.py --quiet`` sets QUIET)."""

from __future__ import annotations

import sys

QUIET = False


def log(*a) -> None:
    if not QUIET:
        print(*a, file=sys.stderr, flush=True)
