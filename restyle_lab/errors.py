"""Turning the package's own errors into one clear line (and exit status 2) at the command line."""

from __future__ import annotations

import sys
from contextlib import contextmanager


@contextmanager
def friendly_errors():
    from .checkpoints import CheckpointError
    from .data import DatasetError
    from .evaluate import EvaluationError
    from .metrics import MetricUnavailable
    from .store import StoreError

    try:
        yield
    except (CheckpointError, DatasetError, StoreError, EvaluationError, MetricUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("interrupted: results written so far are kept; run the same command again to resume",
              file=sys.stderr)
        raise SystemExit(130) from None
