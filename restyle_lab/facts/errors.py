"""The errors a user can fix. Each says what is wrong and what to do; the command line prints
it as one line and exits with status 2 (see ``restyle_lab.cli``).

This module imports nothing, so every layer can raise these without import circles.
"""


class RestyleLabError(Exception):
    """Base of every error caused by input, settings or files rather than by a bug."""


class UsageError(RestyleLabError):
    """A setting that cannot be honoured (a bad step count, device, parameter name...)."""


class CheckpointError(RestyleLabError):
    """A checkpoint that cannot be used, with what is wrong and what to do about it."""


class DatasetError(RestyleLabError):
    """A folder of images that cannot be used as given."""


class StoreError(RestyleLabError):
    """A run directory that cannot be read or written as asked."""


class EvaluationError(RestyleLabError):
    """An evaluation that cannot run with the given methods and inputs."""


class SkippedInput(RestyleLabError):
    """An input a run skips, with this reason recorded and counted (a photo without a face), instead of stopping."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is so that its cleanups run (temporary files, kernels), as they
    do for Ctrl-C (see ``restyle_lab.cli``)."""
