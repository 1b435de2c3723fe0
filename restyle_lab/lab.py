"""What a notebook needs in one object: checkpoints and data of a domain, a shared run store, outputs.

``Lab(domain="mini", ...)`` finds the domain's checkpoints (the shipped weights for
``mini``; for the real domains, the official file names inside ``checkpoints``), the
test set (``mini`` renders its own), and a run store shared by all notebooks with the
same settings, so inversions one notebook stored are reused by the next.
"""

from __future__ import annotations

from pathlib import Path

from .domains import get_domain

# The official file names (ReStyle / pSp / e4e READMEs). "fpn" variants were never released:
# train them with the official code (--encoder_type GradualStyleEncoder) and use these names.
ENCODER_KEYS = ("restyle_psp", "restyle_e4e", "restyle_psp_fpn", "psp", "e4e")


def _official(tag: str, generator: str, **extra) -> dict:
    """Every encoder as ``<key>_<tag>_encode.pt`` (the official naming), plus the generator."""
    return {**{k: f"{k}_{tag}_encode.pt" for k in ENCODER_KEYS}, "generator": generator, **extra}


OFFICIAL_FILES = {
    "faces": _official("ffhq", "stylegan2-ffhq-config-f.pt", restyle_psp_toon="restyle_psp_toonify.pt"),
    "toonify": {"restyle_psp": "restyle_psp_ffhq_encode.pt", "restyle_psp_toon": "restyle_psp_toonify.pt",
                "generator": "stylegan2-ffhq-config-f.pt"},
    "cars": _official("cars", "stylegan2-car-config-f.pt"),
    "church": _official("church", "stylegan2-church-config-f.pt"),
    "horse": _official("horse", "stylegan2-horse-config-f.pt"),
    "wild": _official("afhq_wild", "afhqwild.pt"),
}
MINI_FILES = {"restyle_psp": "restyle_psp_mini.pt", "restyle_e4e": "restyle_e4e_mini.pt",
              "restyle_psp_fpn": "restyle_psp_fpn_mini.pt", "psp": "psp_mini.pt", "e4e": "e4e_mini.pt",
              "generator": "stylegan2_mini.pt", "toon_generator": "stylegan2_mini_toon.pt",
              "restyle_psp_toon": "restyle_psp_mini_toon.pt"}

# method name -> (kind, checkpoint key); steps and schedules come from the Lab's settings
METHODS = {
    "restyle_psp": ("restyle", "restyle_psp"), "restyle_e4e": ("restyle", "restyle_e4e"),
    "restyle_psp_fpn": ("restyle", "restyle_psp_fpn"), "psp": ("single", "psp"), "e4e": ("single", "e4e"),
    "psp_naive": ("naive", "psp"), "e4e_naive": ("naive", "e4e"),
    "optim_w": ("optim", "generator"), "optim_w+": ("optim", "generator"),
    "restyle_psp+optim": ("hybrid", "restyle_psp"), "restyle_e4e+optim": ("hybrid", "restyle_e4e"),
    "restyle_psp_toon": ("restyle", "restyle_psp_toon"), "toon_bootstrap": ("restyle", "restyle_psp_toon"),
}
OPTIM_SCHEDULE = (1, 10, 50, 100, 250, 500, 1000)


class Lab:
    """Settings, inputs and outputs of one notebook run (see the module docstring)."""

    def __init__(self, name: str, domain: str = "mini", checkpoints=None, data_root=None, n_images: int = 32,
                 steps: int = 5, device: str = "cpu", batch_size: int = 8, smoke: bool = False, out_dir=None,
                 run_dir=None, optim_steps: int = 1000, dtype: str = "float32"):
        self.name = name
        self.domain = get_domain(domain)
        self.smoke = bool(smoke)
        self.n_images = min(n_images, 4) if smoke else n_images
        self.steps = min(steps, 3) if smoke else steps
        self.optim_steps = min(optim_steps, 20) if smoke else optim_steps
        self.device, self.batch_size, self.dtype = device, batch_size, dtype
        self.checkpoints, self.missing = self._resolve_checkpoints(checkpoints)
        self.data_root = self._resolve_data(data_root)
        root = Path.cwd() / "results" / self.domain.name
        self.out_dir = Path(out_dir) if out_dir else root / name
        self.out_dir.mkdir(parents=True, exist_ok=True)
        tag = f"n{self.n_images}_s{self.steps}_o{self.optim_steps}_b{batch_size}_{dtype}_{device.split(':')[0]}"
        self.run_dir = Path(run_dir) if run_dir else self.out_dir.parent / "store" / tag

    # ------------------------------------------------------------------ inputs
    def _resolve_checkpoints(self, given):
        folder = Path(given) if isinstance(given, (str, Path)) and given else None
        if self.domain.name == "mini":
            from .mini.train import ASSETS

            expected = {k: (folder or ASSETS) / v for k, v in MINI_FILES.items()}
        else:
            names = OFFICIAL_FILES.get(self.domain.name, {})
            expected = {k: (folder / v if folder else Path(v)) for k, v in names.items()}
        if isinstance(given, dict):
            expected.update({k: Path(v) for k, v in given.items() if v})
        found = {k: p for k, p in expected.items() if p.exists()}
        missing = {k: p for k, p in expected.items() if not p.exists()}
        return found, missing

    def _resolve_data(self, given):
        if given:
            path = Path(given)
            if not path.is_dir():
                raise FileNotFoundError(f"data_root {path} is not a folder of test images")
            return path
        if self.domain.name == "mini":
            from .mini.dataset import write_test_set

            return write_test_set(n=self.n_images)
        raise FileNotFoundError(f"domain {self.domain.name!r} needs data_root: a folder with its test set "
                                f"({self.domain.test_set})")

    def has(self, *keys) -> bool:
        return all(k in self.checkpoints for k in keys)

    def available(self, methods: list[str]) -> list[str]:
        """The methods whose checkpoints were found (the others are skipped, and said so)."""
        found = [m for m in methods if self.method_spec(m) is not None]
        if len(found) < len(methods):
            print(f"skipped (checkpoint missing): {', '.join(m for m in methods if m not in found)}")
        return found

    def describe_missing(self) -> str:
        if not self.missing:
            return "all checkpoints found"
        return "missing (methods using them are skipped): " + ", ".join(f"{k} -> {p}" for k, p in self.missing.items())

    # ------------------------------------------------------------------ methods and the store
    def method_spec(self, method: str) -> dict | None:
        """The evaluate() spec of a named method, or None when its checkpoint is missing."""
        if method not in METHODS:
            raise KeyError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
        kind, key = METHODS[method]
        if key not in self.checkpoints:
            return None
        path = str(self.checkpoints[key])
        schedule = [s for s in OPTIM_SCHEDULE if s <= self.optim_steps] or [self.optim_steps]
        if kind == "restyle":
            spec = {"name": method, "kind": "restyle", "checkpoint": path, "steps": self.steps}
            if method == "toon_bootstrap":
                if "restyle_psp" not in self.checkpoints:
                    return None
                spec["bootstrap"] = {"checkpoint": str(self.checkpoints["restyle_psp"]), "steps": 1}
            return spec
        if kind == "single":
            return {"name": method, "kind": "single", "checkpoint": path}
        if kind == "naive":
            return {"name": method, "kind": "naive", "checkpoint": path, "steps": self.steps}
        if kind == "optim":
            return {"name": method, "kind": "optim", "generator": path, "space": method.split("_", 1)[1],
                    "record_at": schedule}
        return {"name": method, "kind": "hybrid", "encoder": key, "record_at": schedule}

    def evaluate(self, methods: list[str], progress: bool = True):
        """Run (or reuse) the named methods on the test set: (rows DataFrame, provenance dict)."""
        from .evaluate import evaluate
        from .store import read_provenance, read_results

        specs, skipped, names = [], [], set()
        for m in methods:
            spec = self.method_spec(m)
            if spec is None:
                skipped.append(m)
                continue
            if spec["kind"] == "hybrid" and spec["encoder"] not in names:
                specs.append(self.method_spec(spec["encoder"]))
                names.add(spec["encoder"])
            if m not in names:
                specs.append(spec)
                names.add(m)
        if skipped:
            print(f"skipped (checkpoint missing): {', '.join(skipped)}; {self.describe_missing()}")
        if not specs:
            raise FileNotFoundError(f"none of {methods} can run: {self.describe_missing()}")
        evaluate(self.run_dir, self.data_root, specs, domain=self.domain.name, batch_size=self.batch_size,
                 n_images=self.n_images, device=self.device, dtype=self.dtype, progress=progress)
        kept = [m for m in methods if m in names]
        return read_results(self.run_dir, methods=kept), read_provenance(self.run_dir)

    def latents(self, method: str) -> dict:
        from .store import read_latents

        return read_latents(self.run_dir, method)

    def network(self, key: str):
        from .checkpoints import load_network

        return load_network(self.checkpoints[key], device=self.device)

    def generator(self, key: str):
        """(Generator, w_avg) from a generator file or the decoder of an encoder checkpoint."""
        from .checkpoints import load_generator

        gen, w_avg, _ = load_generator(self.checkpoints[key], device=self.device)
        return gen, w_avg

    def generator_pair(self):
        """(base generator, fine-tuned generator, their checkpoint keys) for the alignment study."""
        pairs = [("generator", "toon_generator"), ("restyle_psp", "restyle_psp_toon")]
        for base, toon in pairs:
            if self.has(base, toon):
                return self.generator(base)[0], self.generator(toon)[0], base, toon
        raise FileNotFoundError(f"the alignment study needs a base and a toon generator; {self.describe_missing()}")

    def inputs(self, names):
        """The test images ``names`` as the encoders read them: uint8 [N, H, W, 3]."""
        import numpy as np

        from .data import decode_image

        return np.stack([decode_image((self.data_root / str(n)).read_bytes(), self.domain.input_hw)[0]
                         for n in names])

    @staticmethod
    def lpips_or_none(similarity: str):
        if similarity != "lpips_alex_v0.1":
            return None
        from .metrics.lpips_metric import load_lpips

        return load_lpips()

    # ------------------------------------------------------------------ outputs
    def parameters(self) -> dict:
        return {"name": self.name, "domain": self.domain.name, "n_images": self.n_images, "steps": self.steps,
                "optim_steps": self.optim_steps, "device": self.device, "batch_size": self.batch_size,
                "dtype": self.dtype, "smoke": self.smoke, "data_root": str(self.data_root),
                "checkpoints": {k: str(v) for k, v in self.checkpoints.items()},
                "missing": {k: str(v) for k, v in self.missing.items()}, "run_dir": str(self.run_dir)}

    def save_figure(self, fig, name: str, caption: str = ""):
        from .analysis.output import save_figure

        return save_figure(fig, self.out_dir, name, caption)

    def save_table(self, df, name: str, caption: str = ""):
        from .analysis.output import save_table

        return save_table(df, self.out_dir, name, caption)

    def save_parameters(self, provenance: dict | None = None):
        from .analysis.output import save_parameters

        return save_parameters(self.out_dir, self.parameters(), provenance)
