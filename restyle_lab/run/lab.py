"""What a notebook needs in one object: checkpoints and data of a domain, a shared run store, outputs.

``Lab.from_parameters("latent_change", globals())`` is a notebook's whole setup: it resolves
the notebook's parameters through the table in ``restyle_lab.run.notebook_params`` (defaults,
checks, smoke caps) into ``lab.params``, which the notebook reads every value from; it finds
the domain's checkpoints (its ``Domain`` record says which files, and where a domain that
ships its own keeps them) and the test set (a domain that renders its own renders it), and
keeps each method's inversions in a store of its own (``store/<method>-<key>``, the key naming what
makes its results: the method, its files, the domain's metrics, dtype, ops and device), shared by every
notebook: what one notebook stored, any other that runs the same method reads back, for any subset of
the images (``restyle_lab.records.store`` matches images by name and content).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.output import save_figure, save_parameters, save_table
from ..facts.catalog import GENERATOR_PAIRS, NAMED_METHODS, named_spec, resolve_checkpoints
from ..facts.domains import get_domain
from ..facts.errors import UsageError
from ..facts.methods import NamedSettings
from ..facts.metric_names import LPIPS
from ..inversion.build import method_identity
from ..inversion.evaluate import evaluate
from ..inversion.timing import ROUNDS, time_in_one_sitting
from ..inversion.units import wanted_images
from ..metrics.lpips_metric import load_lpips
from ..mini.dataset import write_test_set
from ..models.checkpoints import load_generator
from ..records.data import decode_image, image_folder_for_domain
from ..records.store import (
    MANIFEST_NAME,
    by_content,
    read_latents,
    read_manifest,
    read_provenance,
    read_results,
    stored_images,
    stored_latent_arrays,
)
from .notebook_params import NOTEBOOKS, PARAMS, RESULTS, Params, notebook, resolve


class Lab:
    """Settings, inputs and outputs of one notebook run (see the module docstring)."""

    def __init__(self, name: str, params: Params, store_root=None):
        self.name, self.params = name, params
        self.notebook = notebook(name)
        self.domain = get_domain(params.domain)
        self.checkpoints, self.missing = resolve_checkpoints(self.domain.name, params.checkpoints)
        self.out_dir = Path(params.out_dir) if params.out_dir else Path.cwd() / RESULTS / self.domain.name / name
        self.inverts = "n_images" in params
        self.data_root = self._resolve_data(params.data_root) if self.inverts else None
        # the optimisation baselines invert a seeded subset when the test set is larger (None: all images)
        subset = self._setting("optim_images")
        self.optim_images = subset if subset and subset < params.n_images else None
        self.store_root = Path(store_root) if store_root else self.out_dir.parent / "store"
        self.methods: list[str] = []
        self._entries = None

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
        """A setting of the methods: this notebook's parameter, else the table's default (smoke-capped)."""
        if key in self.params:
            return self.params[key]
        if key == "optim_images":  # a notebook without optimisation baselines has no subset
            return None
        default, cap = PARAMS[key].default, PARAMS[key].smoke_cap
        return min(default, cap) if self.params.smoke and cap else default

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

    def batch_size(self, spec) -> int:
        """Images per batch of a method: an optimisation's ``optim_batch_size`` (None: the domain's, else
        ``batch_size``), any other method's ``batch_size``."""
        if spec.optimises:
            return self._setting("optim_batch_size") or self.domain.optim_batch_size or self.params.batch_size
        return self.params.batch_size

    def store(self, spec) -> Path:
        """The folder holding a method's inversions: its name and a key over what makes its results (the
        method and the files it reads, those it runs on, the domain and its metrics, dtype, ops, device
        type, whether times had a warm-up pass), never over which images or how many."""
        p = self.params
        identity = {"method": _identity(spec), "needs": [_identity(self.spec(m)) for m in spec.needs()],
                    "domain": self.domain.name, "metrics": list(self.domain.metrics), "dtype": p.dtype,
                    "impl": p.impl, "device_type": p.device.split(":")[0], "warmup": self.warmup}
        key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:10]
        return self.store_root / f"{spec.name}-{key}"

    @property
    def warmup(self) -> bool:
        """Time inversions after a warm-up pass: not in smoke runs, where times are not results."""
        return not self.params.smoke

    def entries(self) -> list[dict]:
        """The manifest entries (name, sha256, status, ...) of this notebook's test images, in folder order;
        files the stores have hashed before, unchanged since, are not read again (cached per Lab)."""
        if self._entries is None:
            folder = image_folder_for_domain(self.data_root, self.domain, limit=self.params.n_images)
            previous = [e for d in sorted(self.store_root.glob("*/")) for e in read_manifest(d / MANIFEST_NAME) or []]
            self._entries = folder.manifest(previous)
        return self._entries

    def images(self, method: str | None = None) -> dict:
        """name -> (index, sha256) of this notebook's readable test images; of ``method``: those it inverts (the
        seeded subset of an optimisation baseline), whatever else its store holds."""
        entries = self.entries()
        indices = range(len(entries)) if method is None else wanted_images(self.spec(method), entries)
        return {entries[i]["name"]: (i, entries[i]["sha256"]) for i in indices if entries[i]["status"] == "ok"}

    def compute(self, methods: list[str] | None = None, progress: bool = True, shard: tuple | None = None) -> list:
        """Store the inversions of the named methods (default: this notebook's) that are not stored yet;
        returns the methods that can run. ``shard`` = (k, n): only that shard of the batches (see
        ``restyle-lab reproduce --shard``)."""
        methods = self.default_methods() if methods is None else methods
        specs = self.specs(methods)
        if not specs:
            raise UsageError(f"none of {methods} can run: {self.describe_missing()}")
        p = self.params
        order, nets = list(specs.values()), {}  # networks loaded once for all the stores (a hybrid's encoder)
        for k, spec in enumerate(order):
            later = {str(f) for s in order[k:] for m in (s, *(specs[n] for n in s.needs())) for f in m.files().values()}
            for path in [path for path in nets if path not in later]:
                del nets[path]  # no store left reads it
            evaluate(self.store(spec), self.data_root, [spec], helpers=[specs[m] for m in spec.needs()],
                     domain=self.domain.name, batch_size=self.batch_size(spec), n_images=p.n_images,
                     device=p.device, dtype=p.dtype, impl=p.impl, warmup=self.warmup, progress=progress, shard=shard,
                     nets=nets, merge_data=True)  # a store is shared by the test sets of every size
        return [m for m in methods if m in specs]

    def evaluate(self, methods: list[str] | None = None, progress: bool = True):
        """Run (or reuse) the named methods (default: this notebook's) on the test set: (rows DataFrame,
        provenance dict: the run's settings, and every method's entry). ``self.methods`` lists those that ran."""
        t0 = time.monotonic()
        self.methods = self.compute(methods, progress)
        rows, provenance = [], {}
        for m in self.methods:
            store = self.store(self.spec(m))
            rows.append(read_results(store, methods=[m], images=self.images(m)))
            stored = read_provenance(store)
            # each store has its own batch size (optimisations take optim_batch_size): said per method
            entry = {**stored["methods"][m], "batch_size": stored.get("batch_size")}
            provenance = {**stored, **provenance, "methods": {**provenance.get("methods", {}), m: entry},
                          "stores": {**provenance.get("stores", {}), m: str(store)}}
            if stored.get("metrics_unavailable"):
                provenance["metrics_unavailable"] = {**stored["metrics_unavailable"],
                                                     **provenance.get("metrics_unavailable", {})}
        for key in ("requested", "rebuilt_from_parts", "batch_size"):
            provenance.pop(key, None)
        print(f"inversions of {', '.join(self.methods)} ready in {time.monotonic() - t0:.1f} s")
        return pd.concat(rows, ignore_index=True), provenance

    def time_methods(self, rows: pd.DataFrame, name: str = "timing") -> pd.DataFrame:
        """The seconds a figure plots: this notebook's methods (those with ``rows``) timed in one pass
        (``inversion.timing``: same process, interleaved rounds, warm-up excluded, median), each at its batch on
        the first images it holds in ``rows``. Saved as table ``name`` beside the figures (with the machine,
        threads, load average and date) and returned; the stored per-row seconds stay in the store."""
        t0 = time.monotonic()
        held = {m: rows.loc[rows.method == m, "image_index"].drop_duplicates().sort_values().tolist()
                for m in self.methods if m in set(rows.method)}
        if not held:
            raise UsageError("time_methods: no rows of this notebook's methods to time; give it lab.evaluate()'s rows")
        timing = self.timing_pass(held)
        self.save_table(timing, name, "seconds per image of this notebook's methods, timed in one pass for its "
                        "figures (timed = False: multiplied out from steps_timed), with the machine")
        first = timing.iloc[0]
        print(f"timed {len(held)} methods in one pass in {time.monotonic() - t0:.1f} s: {first.machine}, "
              f"{first.threads} threads, load average {first.load_average:.2f}")
        return timing

    def timing_pass(self, images: dict) -> pd.DataFrame:
        """One timing pass (``inversion.timing.time_in_one_sitting``) of the methods ``images`` names, each at
        its batch on the first of its image indices; the methods they run on (a hybrid's encoder) are built,
        not timed. Nothing is read from or written to the store."""
        p = self.params
        specs = {m: self.spec(m) for m in images}
        helpers = {n: self.spec(n) for s in specs.values() for n in s.needs() if n not in specs}
        folder = image_folder_for_domain(self.data_root, self.domain, limit=p.n_images)
        batches, loaded = {}, {}
        for m, spec in specs.items():
            chosen = tuple(images[m][:self.batch_size(spec)])
            if chosen not in loaded:
                loaded[chosen] = folder.load_batch(list(chosen))[1]
            batches[m] = loaded[chosen]
        # a smoke run times nothing worth a warm-up pass or rounds (as its inversions)
        return time_in_one_sitting(specs, batches, p.device, p.dtype, p.impl, self.domain.name, helpers,
                                   rounds=ROUNDS if self.warmup else 1, warmup=self.warmup)

    def latents(self, method: str) -> dict:
        """A method's stored latents of the images it inverts here (``restyle_lab.records.store.read_latents``)."""
        return read_latents(self.store(self.spec(method)), method, self.images(method))

    def explorable(self, arrays=()) -> tuple[dict, dict]:
        """What can be shown for this notebook's images without running anything, over every named method:
        (method -> the names of the images its store holds here with ``arrays``, in folder order; method -> why
        it is not offered at all). A method stored for some images only (an optimisation's seeded subset) is
        offered for those."""
        images = self.images()
        current = {n: sha for n, (_, sha) in images.items()}
        found, absent = {}, {}
        for method in NAMED_METHODS:
            spec = self.spec(method)
            store = self.store(spec) if spec is not None else None
            held = stored_images(store, method, current) if store is not None and store.is_dir() else {}
            stored_arrays = stored_latent_arrays(store, method) if held else None
            if spec is None:
                absent[method] = "its checkpoint is missing"
            elif not held:
                runs = [n.name for n in NOTEBOOKS.values() if method in n.methods]
                absent[method] = "not stored for these images with these settings" + (
                    f" (run {' or '.join(runs)})" if runs else "")
            elif not stored_arrays or not set(arrays) <= stored_arrays[1]:
                lacking = sorted(set(arrays) - (stored_arrays[1] if stored_arrays else set()))
                absent[method] = ("no start latent stored: a single pass or naive iteration starts from the input "
                                  "image, not from a latent" if "start_latent" in lacking else
                                  f"stored without {', '.join(a.replace('_', ' ') for a in lacking)}")
            else:
                found[method] = [n for n in images if n in held]
        return found, absent

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
            out.update(data_root=str(self.data_root), optim_images=self.optim_images, store_root=str(self.store_root))
        return out

    # a notebook cell ends with these calls: they return nothing, so no `Out` line lists paths (outputs.json
    # and parameters.json in out_dir list what was written)
    def save_figure(self, fig, name: str, caption: str = "") -> None:
        save_figure(fig, self.out_dir, name, caption)

    def save_table(self, df, name: str, caption: str = "") -> None:
        save_table(df, self.out_dir, name, caption)

    def save_parameters(self, provenance: dict | None = None) -> None:
        save_parameters(self.out_dir, self.parameters(), provenance)



def _identity(spec) -> dict:
    """A method's identity for its store's key: its entry with files by content, without what only picks its
    images (a subset of a method's images is the same method)."""
    return by_content(method_identity(spec))
