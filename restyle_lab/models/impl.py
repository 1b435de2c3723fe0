"""Which op implementation a module tree runs: the plain reference ops or the fast ones.

The NVlabs pattern: one ``impl`` argument with the same call signature either way;
``"reference"`` is the exact path (the test oracle, float64-exact against the official
code), ``"fast"`` computes the same sums in fewer passes and may differ by rounding.
The choice is a plain attribute of the modules, never saved in a state dict, so a
loaded checkpoint can be switched in place with :func:`set_impl`.
"""

from __future__ import annotations

from torch import nn

from ..facts.devices import IMPLS, check_impl  # noqa: F401 - check_impl is this module's too (ops import it here)


class HasImpl:
    """Mixin of the modules whose forward depends on ``impl``."""

    impl = "reference"


def set_impl(module: nn.Module, impl: str) -> nn.Module:
    """Switch every module under ``module`` (a Generator, StyleEncoder, InversionNet...) to ``impl``.

    Returns ``module``. Weights and buffers are untouched.
    """
    check_impl(impl)
    for m in module.modules():
        if isinstance(m, HasImpl):
            m.impl = impl
    return module


def get_impl(module: nn.Module) -> str:
    """The impl of a module tree; ``"mixed"`` when its parts disagree, ``"reference"`` when none has one."""
    found = {m.impl for m in module.modules() if isinstance(m, HasImpl)}
    if len(found) > 1:
        return "mixed"
    return found.pop() if found else "reference"
