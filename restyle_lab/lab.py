"""What a notebook needs in one object: checkpoints and data of a domain, a shared run store, outputs.

``Lab.from_parameters("latent_change", globals())`` is a notebook's whole setup: it reads
the notebook's parameters (``restyle_lab.notebook_params``), applies the smoke caps,
finds the domain's checkpoints (the shipped weights for ``mini``; for the real domains,
the official file names inside ``checkpoints``) and the test set (``mini`` renders its
own), and opens a run store shared by all notebooks with the same settings, so
inversions one notebook stored are reused by the next.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .analysis.output import save_figure, save_parameters, save_table
from .catalog import GENERATOR_PAIRS, named_spec, resolve_checkpoints
from .checkpoints import load_generator, load_network
from .data import decode_image
from .domains import get_domain
from .errors import UsageError
from .evaluate import evaluate
from .methods import HybridSpec, positive_int
from .metrics.lpips_metric import load_lpips
from .mini.dataset import write_test_set
from .devices import DEFAULT_IMPL
from .notebook_params import (COMMON_PARAMETERS, NOTEBOOK_METHODS, check_parameters, notebook_parameters,
                              smoke_capped)
from .store import read_latents, read_provenance, read_results


class Lab:
    """Settings, inputs and outputs of one notebook run (see the module docstring)."""

    def __init__(self, name: str, domain: str = "mini", checkpoints=None, data_root=None, n_images: int = 32,
                 steps: int = 5, device: str = "cpu", batch_size: int = 8, smoke: bool = False, out_dir=None,
                 run_dir=None, optim_steps: int = 1000, optim_images: int | None = None, dtype: str = "float32",
                 impl: str = DEFAULT_IMPL, params: dict | None = None):
        self.name = name
        self.domain = get_domain(domain)
        self.smoke = bool(smoke)
        counts = {"n_images": n_images, "steps": steps, "optim_steps": optim_steps}
        counts = {k: positive_int(v, k) for k, v in counts.items()}
        if self.smoke:
            counts = smoke_capped(counts)
        self.n_images, self.steps, self.optim_steps = counts["n_images"], counts["steps"], counts["optim_steps"]
        # the optimisation baselines invert a seeded subset when the test set is larger (None: all images)
        self.optim_images = positive_int(optim_images, "optim_images") if optim_images else None
        if self.optim_images is not None and self.optim_images >= self.n_images:
            self.optim_images = None
        self.device, self.batch_size, self.dtype = device, positive_int(batch_size, "batch_size"), dtype
        self.impl = impl
        self.params = smoke_capped(params or {}) if self.smoke else dict(params or {})
        self.checkpoints, self.missing = resolve_checkpoints(self.domain.name, checkpoints)
        self.data_root = self._resolve_data(data_root)
        self.out_dir = Path(out_dir) if out_dir else Path.cwd() / "results" / self.domain.name / name
        subset = f"_oi{self.optim_images}" if self.optim_images else ""
        tag = (f"n{self.n_images}_s{self.steps}_o{self.optim_steps}{subset}_b{self.batch_size}_{dtype}_{impl}_"
               f"{device.split(':')[0]}")
        self.run_dir = Path(run_dir) if run_dir else self.out_dir.parent / "store" / tag
        self.methods: list[str] = []

    @classmethod
    def from_parameters(cls, name: str, namespace: dict | None = None, **params) -> "Lab":
        """A notebook's setup in one call: its parameters taken from ``namespace`` (the notebook's
        ``globals()``, where the parameters cell put them), overridden by ``params``; checked, smoke caps
        applied, and what is missing printed."""
        given = {k: namespace[k] for k in notebook_parameters(name) if namespace and k in namespace}
        given = check_parameters(name, {**given, **params})
        common = {k: v for k, v in given.items() if k in COMMON_PARAMETERS}
        extras = {k: v for k, v in given.items() if k not in COMMON_PARAMETERS}
        for key in ("optim_steps", "optim_images"):
            if key in extras:
                common[key] = extras[key]
        lab = cls(name, params=extras, **common)
        print(lab.describe_missing())
        return lab

    # ------------------------------------------------------------------ inputs
    def _resolve_data(self, given):
        if given:
            path = Path(given)
            if not path.is_dir():
                raise UsageError(f"data_root {path} is not a folder of test images")
            return path
        if self.domain.name == "mini":
            return write_test_set(n=self.n_images)
        raise UsageError(f"domain {self.domain.name!r} needs data_root: a folder with its test set "
                         f"({self.domain.test_set})")

    def has(self, *keys) -> bool:
        return all(k in self.checkpoints for k in keys)

    def available(self, methods: list[str]) -> list[str]:
        """The methods whose checkpoints were found (the others are skipped, and said so)."""
        found = [m for m in methods if self.spec(m) is not None]
        if len(found) < len(methods):
            print(f"skipped (checkpoint missing): {', '.join(m for m in methods if m not in found)}")
        return found

    def describe_missing(self) -> str:
        if not self.missing:
            return "all checkpoints found"
        return "missing (methods using them are skipped): " + ", ".join(f"{k} -> {p}" for k, p in self.missing.items())

    # ------------------------------------------------------------------ methods and the store
    def spec(self, method: str):
        """The spec of a named method with this Lab's settings, or None when its checkpoint is missing."""
        return named_spec(method, self.checkpoints, self.steps, self.optim_steps, self.optim_images)

    def default_methods(self) -> list[str]:
        """This notebook's methods (notebook_params.NOTEBOOK_METHODS; the explorer: its ``method``)."""
        return [self.params["method"]] if "method" in self.params else list(NOTEBOOK_METHODS.get(self.name, []))

    def specs(self, methods: list[str] | None = None) -> dict:
        """name -> spec of the named methods whose checkpoints exist (a hybrid brings its encoder)."""
        specs = {}
        for m in self.available(self.default_methods() if methods is None else methods):
            spec = self.spec(m)
            if isinstance(spec, HybridSpec) and spec.encoder not in specs:
                specs[spec.encoder] = self.spec(spec.encoder)
            specs[m] = spec
        return specs

    def compute(self, methods: list[str] | None = None, progress: bool = True, shard: tuple | None = None) -> list:
        """Store the inversions of the named methods (default: this notebook's) that are not stored yet;
        returns the methods that can run. ``shard`` = (k, n): only that shard of the batches (see
        ``restyle-lab reproduce --shard``)."""
        methods = self.default_methods() if methods is None else methods
        specs = self.specs(methods)
        if not specs:
            raise UsageError(f"none of {methods} can run: {self.describe_missing()}")
        evaluate(self.run_dir, self.data_root, list(specs.values()), domain=self.domain.name,
                 batch_size=self.batch_size, n_images=self.n_images, device=self.device, dtype=self.dtype, impl=self.impl,
                 progress=progress, shard=shard)
        return [m for m in methods if m in specs]

    def evaluate(self, methods: list[str] | None = None, progress: bool = True):
        """Run (or reuse) the named methods (default: this notebook's) on the test set: (rows DataFrame,
        provenance dict). ``self.methods`` lists those that ran."""
        t0 = time.monotonic()
        self.methods = self.compute(methods, progress)
        rows = read_results(self.run_dir, methods=self.methods)
        print(f"inversions of {', '.join(self.methods)} ready in {time.monotonic() - t0:.1f} s")
        return rows, read_provenance(self.run_dir)

    def latents(self, method: str) -> dict:
        return read_latents(self.run_dir, method)

    def network(self, key: str):
        return load_network(self.checkpoints[key], device=self.device)

    def generator(self, key: str):
        """(Generator, w_avg) from a generator file or the decoder of an encoder checkpoint."""
        gen, w_avg, _ = load_generator(self.checkpoints[key], device=self.device)
        return gen, w_avg

    def generator_pair(self):
        """(base generator, fine-tuned generator, their checkpoint keys) for the alignment study."""
        for base, toon in GENERATOR_PAIRS:
            if self.has(base, toon):
                return self.generator(base)[0], self.generator(toon)[0], base, toon
        raise UsageError(f"the alignment study needs a base and a toon generator; {self.describe_missing()}")

    def inputs(self, names):
        """The test images ``names`` as the encoders read them: uint8 [N, H, W, 3]."""
        return np.stack([decode_image((self.data_root / str(n)).read_bytes(), self.domain.input_hw)[0]
                         for n in names])

    @staticmethod
    def lpips_or_none(similarity: str):
        return load_lpips() if similarity == "lpips_alex_v0.1" else None

    # ------------------------------------------------------------------ outputs
    def parameters(self) -> dict:
        return {"name": self.name, "domain": self.domain.name, "n_images": self.n_images, "steps": self.steps,
                "optim_steps": self.optim_steps, "optim_images": self.optim_images, "device": self.device, "batch_size": self.batch_size,
                "dtype": self.dtype, "impl": self.impl, "smoke": self.smoke, "data_root": str(self.data_root), **self.params,
                "checkpoints": {k: str(v) for k, v in self.checkpoints.items()},
                "missing": {k: str(v) for k, v in self.missing.items()}, "run_dir": str(self.run_dir)}

    def save_figure(self, fig, name: str, caption: str = ""):
        return save_figure(fig, self.out_dir, name, caption)

    def save_table(self, df, name: str, caption: str = ""):
        return save_table(df, self.out_dir, name, caption)

    def save_parameters(self, provenance: dict | None = None):
        return save_parameters(self.out_dir, self.parameters(), provenance)
