"""What the package tells a user about a fallback it took: one line in its own words, not a Python warning
(whose text carries a line of the package's source). The details (which file, where it was looked for, the
fix) go to the provenance, where the notice points."""

from __future__ import annotations

import sys

_SAID: set[str] = set()


def notice(message: str) -> None:
    """Print ``message`` as one line ``note: ...`` on stdout, once per process (a fallback taken for every
    method of a run is said once)."""
    line = " ".join(str(message).split())
    if line not in _SAID:
        _SAID.add(line)
        print(f"note: {line}", file=sys.stdout, flush=True)
