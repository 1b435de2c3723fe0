"""The ``restyle-lab`` command: ``parser`` reads the arguments (torch-free, so ``--help`` is instant) and
``commands`` runs the chosen one. ``restyle_lab.cli:main`` is the console entry point (pyproject.toml), and
``python -m restyle_lab.cli`` (torchrun) runs the same."""

from .parser import build_parser, main

__all__ = ["build_parser", "main"]
