"""Pure-PyTorch models: StyleGAN2 generator and the pSp / e4e / ReStyle encoders.

``impl`` (``set_impl``): the reference ops (exact, the oracle) or the fast ones;
``precision``: bf16 / fp16 inference through autocast; ``host_memory``: the CPU
allocator setting that pays most on large activations.
"""

from .encoders import StyleEncoder
from .host_memory import reuse_freed_memory
from .impl import IMPLS, get_impl, set_impl
from .stylegan2 import Generator

__all__ = ["Generator", "StyleEncoder", "IMPLS", "set_impl", "get_impl", "reuse_freed_memory"]
