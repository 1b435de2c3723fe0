"""Inverters built on demand from method specs: every checkpoint is loaded at most once, and only for
methods that still have work to do."""

from __future__ import annotations

from pathlib import Path

import torch

from ..facts.errors import EvaluationError
from ..facts.formats import DEFAULT_IMPL
from ..models import set_impl
from ..models.checkpoints import load_generator, load_network
from ..records.files import file_problem, sha256_file
from ..records.store import LEARNED_KEYS
from .inverters import EncoderInverter, ReStyleInverter
from .projector import HybridInverter, Projector

# what building a method's inverter reveals (recorded, and compared on resume when known)
DERIVED_KEYS = LEARNED_KEYS


class Inverters:
    """Inverters built on demand; every checkpoint is loaded at most once."""

    def __init__(self, specs: dict, device, dtype, domain, nets: dict | None = None, compute: str | None = None,
                 impl: str = DEFAULT_IMPL, warmup: bool = True):
        """``dtype``: the weights' dtype; ``compute``: bf16 / fp16 autocast or None; ``impl``: the ops
        (models/impl.py); ``nets``: a path -> network cache to share with other Inverters."""
        self.specs, self.device, self.dtype, self.domain = specs, device, dtype, domain
        self.compute, self.impl, self.warmup = compute, impl, warmup
        # a CPU optimises a batch in parts, one per core, side by side (1.3x on mini; same results)
        self.workers = torch.get_num_threads() if torch.device(device).type == "cpu" else 1
        self._nets = {} if nets is None else nets
        self._built = {}

    def net(self, path):
        path = str(path)
        if path not in self._nets:
            if not Path(path).is_file():
                raise EvaluationError(f"checkpoint {path} not found (see README: which files go where)")
            net = set_impl(load_network(path, device=self.device, dtype=self.dtype), self.impl)
            if tuple(net.geometry.input_hw) != tuple(self.domain.input_hw):
                raise EvaluationError(f"{path} reads {net.geometry.input_hw} images but domain {self.domain.name!r} "
                                      f"uses {self.domain.input_hw}: wrong --domain for this checkpoint?")
            self._nets[path] = net
        return self._nets[path]

    def __getitem__(self, name: str):
        if name not in self._built:
            inverter = self.specs[name].build(self)
            inverter.warmup = self.warmup  # a smoke run times nothing worth a warm-up pass
            self._built[name] = inverter
        return self._built[name]

    def _encoder_net(self, spec, path, restyle: bool):
        net = self.net(path)
        if net.is_restyle != restyle:
            hint = "restyle:CKPT" if net.is_restyle else "single:CKPT or naive:CKPT[:STEPS]"
            raise EvaluationError(f"method {spec.name!r} ({spec.kind}): {path} is a {net.family} checkpoint, which "
                                  f"{'needs a ReStyle method' if net.is_restyle else 'is not a ReStyle network'}; "
                                  f"use {hint}")
        return net

    # what the method kinds build themselves from (methods.MethodSpec.build)
    def restyle(self, spec, path, steps: int, name: str, bootstrap=None) -> ReStyleInverter:
        return ReStyleInverter(self._encoder_net(spec, path, True), steps, name=name, bootstrap=bootstrap,
                               dtype=self.compute)

    def encoder(self, spec, path, steps: int, name: str) -> EncoderInverter:
        return EncoderInverter(self._encoder_net(spec, path, False), steps, name=name, dtype=self.compute)

    def projector(self, spec, config, name: str | None = None) -> Projector:
        """The projector into the generator file ``spec.generator``, else into the decoder of ``spec.checkpoint``."""
        if spec.generator:
            gen, w_avg, _ = load_generator(spec.generator, device=self.device, dtype=self.dtype)
        else:
            net = self.net(spec.checkpoint)
            gen, w_avg = net.decoder, net.latent_avg.reshape(-1, net.latent_avg.shape[-1])[0]
        return Projector(gen, w_avg, config, geometry=self.domain.geometry, name=name or spec.name, impl=self.impl,
                         dtype=self.compute, workers=self.workers)

    def hybrid(self, spec, encoder, config) -> HybridInverter:
        net = encoder.net
        projector = Projector(net.decoder, net.latent_avg.reshape(-1, net.latent_avg.shape[-1])[0], config,
                              geometry=self.domain.geometry, name=f"{spec.name}_optim", impl=self.impl,
                              dtype=self.compute, workers=self.workers)
        return HybridInverter(encoder, projector, name=spec.name)


def method_identity(spec) -> dict:
    """The provenance entry of a method before anything is loaded: its spec and its files' sha256."""
    entry = spec.to_dict()
    for role, path in spec.files().items():
        problem = file_problem(path)
        if problem:
            raise EvaluationError(f"method {spec.name!r}: {role} {path} {problem}" if problem == "not found" else
                                  f"method {spec.name!r}: {role} {path}: {problem}")
        key = {"checkpoint": "checkpoint_sha256", "generator": "generator_sha256"}.get(role)
        if key:
            entry[key] = sha256_file(path)
        else:
            entry["bootstrap"] = {**entry["bootstrap"], "sha256": sha256_file(path)}
    return entry


def derived(inverter) -> dict:
    described = inverter.describe()
    return {k: described[k] for k in DERIVED_KEYS if k in described}
