"""Pure-PyTorch models: StyleGAN2 generator and the pSp / e4e / ReStyle encoders."""

from .encoders import StyleEncoder
from .stylegan2 import Generator

__all__ = ["Generator", "StyleEncoder"]
