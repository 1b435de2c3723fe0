"""The defaults the engine, the notebooks and the command line share.

``inversion.evaluate`` and ``inversion.invert`` take their keyword defaults from ``DEFAULTS``; the notebooks'
parameter table (``run.notebook_params.PARAMS``) takes the same parameters' defaults from it, and the command
line its options' defaults from that table. The engine so never reads the notebooks' table.
"""

from __future__ import annotations

from dataclasses import dataclass

from .formats import DEFAULT_IMPL


@dataclass(frozen=True)
class Defaults:
    domain: str = "mini"
    steps: int = 5
    device: str = "cpu"
    dtype: str = "float32"
    impl: str = DEFAULT_IMPL
    batch_size: int = 8


DEFAULTS = Defaults()
