"""restyle-lab: ReStyle / pSp / e4e inversion, analyses and figures, in pure PyTorch."""

__version__ = "0.1.0"
