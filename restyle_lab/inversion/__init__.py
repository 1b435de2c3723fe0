"""Inversion methods behind one interface: ``inverter.invert(x) -> Trace`` (per-step latents,
images at the evaluation size, seconds per image per step)."""

from .inverters import EncoderInverter, Inverter, ReStyleInverter, inverter_for
from .projector import HybridInverter, Projector, ProjectorConfig
from .trace import Trace, TraceStep

__all__ = ["Inverter", "ReStyleInverter", "EncoderInverter", "inverter_for", "Projector", "ProjectorConfig", "HybridInverter",
           "Trace", "TraceStep"]
