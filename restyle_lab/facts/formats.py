"""The names the command line and the notebooks give number formats and op implementations.

torch-free (``restyle_lab.facts.devices`` maps them to torch dtypes), so ``--help`` lists them instantly.
"""

from __future__ import annotations

# float32 / float64: the weights and every operation in that dtype; bf16 / fp16: float32 weights, the
# convolutions and matrix products under autocast (models/precision.py says what stays float32)
DTYPE_NAMES = ("float32", "float64", "bf16", "fp16")
LOW_PRECISION = ("bf16", "fp16")
IMPLS = ("reference", "fast")  # models/impl.py: the exact ops (the oracle) or the fast ones
DEFAULT_IMPL = "fast"  # faster on CPU and GPU (README, Speed); within rounding of the reference
