"""What a notebook needs in one object: checkpoints and data of a domain, a shared run store, outputs.

``Lab.from_parameters("latent_change", globals())`` is a notebook's whole setup: it resolves
the notebook's parameters through the table in ``restyle_lab.notebook_params`` (defaults,
checks, smoke caps) into ``lab.params``, which the notebook reads every value from; it finds
the domain's checkpoints (its ``Domain`` record says which files, and where a domain that
ships its own keeps them) and the test set (a domain that renders its own renders it), and
opens a run store shared by all notebooks with the same settings, so inversions one notebook
stored are reused by the next.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .analysis.output import save_figure, save_parameters, save_table
from .catalog import GENERATOR_PAIRS, named_spec, resolve_checkpoints
from .checkpoints import load_generator
from .data import decode_image
from .domains import get_domain
from .errors import UsageError
from .inversion.evaluate import evaluate
from .methods import NamedSettings
from .metric_names import LPIPS
from .metrics.lpips_metric import load_lpips
from .mini.dataset import write_test_set
from .notebook_params import PARAMS, Params, notebook, resolve
from .store import read_latents, read_provenance, read_results, stored_latent_arrays


class Lab:
    """Settings, inputs and outputs of one notebook run (see the module docstring)."""

    def __init__(self, name: str, params: Params, run_dir=None):
        self.name, self.params = name, params
        self.notebook = notebook(name)
        self.domain = get_domain(params.domain)
        self.checkpoints, self.missing = resolve_checkpoints(self.domain.name, params.checkpoints)
        self.out_dir = Path(params.out_dir) if params.out_dir else Path.cwd() / "results" / self.domain.name / name
        self.inverts = "n_images" in params
        self.data_root = self._resolve_data(params.data_root) if self.inverts else None
        # the optimisation baselines invert a seeded subset when the test set is larger (None: all images)
        subset = self._setting("optim_images")
        self.optim_images = subset if subset and subset < params.n_images else None
        self.run_dir = (Path(run_dir) if run_dir else self.out_dir.parent / "store" / self._store_tag()) \
            if self.inverts else None
        self.methods: list[str] = []

    @classmethod
    def from_parameters(cls, name: str, namespace: dict | None = None, **params) -> "Lab":
        """A notebook's setup in one call: its parameters taken from ``namespace`` (the notebook's
        ``globals()``, where the parameters cell put them), overridden by ``params``; checked, smoke caps
        applied, and what is missing printed."""
        given = {k: namespace[k] for k in notebook(name).params if namespace and k in namespace}
        lab = cls(name, resolve(name, {**given, **params}))
        print(lab.describe_missing())
        return lab

    def _setting(self, key: str):
        """A setting of the store: this notebook's parameter, else the table's default (smoke-capped)."""
        if key in self.params:
            return self.params[key]
        if key == "optim_images":  # a notebook without optimisation baselines has no subset
            return None
        default, cap = PARAMS[key].default, PARAMS[key].smoke_cap
        return min(default, cap) if self.params.smoke and cap else default

    def _store_tag(self) -> str:
        p = self.params
        subset = f"_oi{self.optim_images}" if self.optim_images else ""
        return (f"n{p.n_images}_s{p.steps}_o{self._setting('optim_steps')}{subset}_b{p.batch_size}_{p.dtype}_{p.impl}_"
                f"{p.device.split(':')[0]}")

    # ------------------------------------------------------------------ inputs
    def _resolve_data(self, given):
        if given:
            path = Path(given)
            if not path.is_dir():
                raise UsageError(f"data_root {path} is not a folder of test images")
            return path
        if self.domain.renders_test_set:
            return write_test_set(n=self.params.n_images)
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
        settings = NamedSettings(self.params.steps, self._setting("optim_steps"), self.optim_images)
        return named_spec(method, self.checkpoints, settings)

    def default_methods(self) -> list[str]:
        """This notebook's methods (``notebook_params.NOTEBOOKS``; the explorer: its ``method``)."""
        return list(self.notebook.methods_with(self.params))

    def specs(self, methods: list[str] | None = None) -> dict:
        """name -> spec of the named methods whose checkpoints exist (with the methods they run on)."""
        specs = {}
        for m in self.available(self.default_methods() if methods is None else methods):
            spec = self.spec(m)
            for other in spec.needs():
                specs.setdefault(other, self.spec(other))
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
        p = self.params
        evaluate(self.run_dir, self.data_root, list(specs.values()), domain=self.domain.name, batch_size=p.batch_size,
                 n_images=p.n_images, device=p.device, dtype=p.dtype, impl=p.impl, progress=progress, shard=shard)
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

    def stored_methods(self, names, arrays=()) -> list[str]:
        """The methods in this notebook's store whose latents cover exactly the images ``names`` (in that
        order) and hold ``arrays``: what can be shown for those images without running anything."""
        names = [str(n) for n in names]
        found = []
        for method in read_provenance(self.run_dir).get("methods", {}):
            held = stored_latent_arrays(self.run_dir, method)
            if held and held[0] == names and set(arrays) <= held[1]:
                found.append(method)
        return found

    def generator(self, key: str):
        """(Generator, w_avg) from a generator file or the decoder of an encoder checkpoint."""
        gen, w_avg, _ = load_generator(self.checkpoints[key], device=self.params.device)
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
        return load_lpips() if similarity == LPIPS else None

    # ------------------------------------------------------------------ outputs
    def parameters(self) -> dict:
        """What parameters.json records: every parameter, and what they resolved to."""
        out = {"name": self.name, **self.params, "checkpoint_files": {k: str(v) for k, v in self.checkpoints.items()},
               "missing": {k: str(v) for k, v in self.missing.items()}}
        if self.inverts:
            out.update(data_root=str(self.data_root), optim_images=self.optim_images, run_dir=str(self.run_dir))
        return out

    # a notebook cell ends with these calls: they return nothing, so no `Out` line lists paths (outputs.json
    # and parameters.json in out_dir list what was written)
    def save_figure(self, fig, name: str, caption: str = "") -> None:
        save_figure(fig, self.out_dir, name, caption)

    def save_table(self, df, name: str, caption: str = "") -> None:
        save_table(df, self.out_dir, name, caption)

    def save_parameters(self, provenance: dict | None = None) -> None:
        save_parameters(self.out_dir, self.parameters(), provenance)
