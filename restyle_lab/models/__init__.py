"""Pure-PyTorch models: StyleGAN2 generator and the pSp / e4e / ReStyle encoders."""

from .encoders import StyleEncoder
from .impl import IMPLS, get_impl, set_impl
from .stylegan2 import Generator

__all__ = ["Generator", "StyleEncoder", "IMPLS", "set_impl", "get_impl"]
