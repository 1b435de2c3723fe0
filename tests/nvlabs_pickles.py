"""Hostile and broken NVlabs-style pickles for the reader's tests (test_nvlabs.py, test_bad_inputs.py)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

SNAPSHOTS = ("sg2ada_res64_map8", "sg2ada_res128_auto")


class _RunsACommand:
    """Unpickled by plain ``pickle.load``, this runs the shell command (os.system)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def write_code_pickle(path, marker) -> Path:
    """A snapshot-shaped dict whose G_ema, when unpickled, would create ``marker`` through os.system."""
    path = Path(path)
    path.write_bytes(pickle.dumps({"G_ema": _RunsACommand(f"touch {marker}"), "training_set_kwargs": {}}))
    return path


def write_unknown_class_pickle(path) -> Path:
    """A protocol-0 pickle calling ``training.networks.Generator()`` (a global the reader never rebuilds)."""
    path = Path(path)
    path.write_bytes(b"ctraining.networks\nGenerator\n(tR.")
    return path


def write_plain_pickle(path) -> Path:
    """A harmless snapshot-shaped pickle (dicts and strings only)."""
    path = Path(path)
    path.write_bytes(pickle.dumps({"G_ema": None, "training_set_kwargs": {"path": "~/datasets/" + "x" * 200}}))
    return path


def write_truncated(src, path, fraction: float = 0.6) -> Path:
    data = Path(src).read_bytes()
    path = Path(path)
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def write_renamed_class(src, path, old: str, new: str) -> Path:
    """The snapshot ``src`` with every ``old`` class name (and source text) spelt ``new`` (same length, so the
    pickle stays valid): a network whose records are not stylegan2-ada-pytorch's."""
    assert len(old) == len(new)
    path = Path(path)
    path.write_bytes(Path(src).read_bytes().replace(old.encode(), new.encode()))
    return path


# ------------------------------------------------------------------ a tiny snapshot, written here

class _Record:
    """Pickled as NVlabs pickles a persistent module: ``torch_utils.persistence._reconstruct_persistent_obj(meta)``,
    ``meta`` holding the class name, a stand-in for its source and the module's state."""

    def __init__(self, class_name: str, parameters=None, buffers=None, modules=None, init_kwargs=None, **attributes):
        self.meta = {"type": "class", "version": 6, "module_src": f"# the source of {class_name} would be here",
                     "class_name": class_name,
                     "state": {"_parameters": dict(parameters or {}), "_buffers": dict(buffers or {}),
                               "_modules": dict(modules or {}), "_init_args": (),
                               "_init_kwargs": dict(init_kwargs or {}), "training": False, **attributes}}

    @property
    def state(self) -> dict:
        return self.meta["state"]


def _reconstruct_persistent_obj(meta):  # never called: only its name is pickled
    raise AssertionError("the reader must not call the pickled function")


class _SnapshotPickler(pickle.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, _Record):
            return _reconstruct_persistent_obj, (obj.meta,)
        return NotImplemented


def _fc(out_features: int, in_features: int, bias_init: float = 0.0, lr_multiplier: float = 1.0):
    import torch

    return _Record("FullyConnectedLayer", {"weight": torch.randn(out_features, in_features),
                                           "bias": torch.full((out_features,), bias_init)},
                   init_kwargs={"lr_multiplier": lr_multiplier}, in_features=in_features, out_features=out_features)


def tiny_snapshot(resolution: int = 8, w_dim: int = 8, channels: int = 8, n_mlp: int = 2, seed: int = 0) -> dict:
    """The dict a stylegan2-ada-pytorch training loop pickles, for a tiny generator (``G_ema`` only, every
    record and tensor a real snapshot has); edit it, then ``write_snapshot``."""
    import torch

    torch.manual_seed(seed)
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    filt = (taps[:, None] * taps[None, :]) / (taps.sum() ** 2)

    def layer(c_in, c_out, res):
        return _Record("SynthesisLayer", {"weight": torch.randn(c_out, c_in, 3, 3), "bias": torch.zeros(c_out),
                                          "noise_strength": torch.tensor(0.1)},
                       {"resample_filter": filt.clone(), "noise_const": torch.randn(res, res)},
                       {"affine": _fc(c_in, w_dim, 1.0)}, resolution=res)

    def torgb(c_in):
        return _Record("ToRGBLayer", {"weight": torch.randn(3, c_in, 1, 1), "bias": torch.zeros(3)}, {},
                       {"affine": _fc(c_in, w_dim, 1.0)})

    blocks = [2 ** k for k in range(2, resolution.bit_length())]
    synthesis_modules = {"b4": _Record("SynthesisBlock", {"const": torch.randn(channels, 4, 4)},
                                       {"resample_filter": filt.clone()},
                                       {"conv1": layer(channels, channels, 4), "torgb": torgb(channels)},
                                       architecture="skip", resolution=4)}
    for res in blocks[1:]:
        synthesis_modules[f"b{res}"] = _Record(
            "SynthesisBlock", {}, {"resample_filter": filt.clone()},
            {"conv0": layer(channels, channels, res), "conv1": layer(channels, channels, res), "torgb": torgb(channels)},
            architecture="skip", resolution=res)
    synthesis = _Record("SynthesisNetwork", modules=synthesis_modules,
                        init_kwargs={"channel_base": channels * resolution, "channel_max": channels,
                                     "num_fp16_res": 0, "conv_clamp": None},
                        w_dim=w_dim, img_resolution=resolution, block_resolutions=blocks)
    mapping = _Record("MappingNetwork", {}, {"w_avg": torch.randn(w_dim)},
                      {f"fc{i}": _fc(w_dim, w_dim, lr_multiplier=0.01) for i in range(n_mlp)},
                      z_dim=w_dim, w_dim=w_dim, num_layers=n_mlp)
    g_ema = _Record("Generator", modules={"mapping": mapping, "synthesis": synthesis},
                    z_dim=w_dim, c_dim=0, w_dim=w_dim, img_resolution=resolution, img_channels=3)
    return {"G_ema": g_ema, "augment_pipe": None, "training_set_kwargs": {"resolution": resolution}}


def write_snapshot(path, snapshot: dict | None = None) -> Path:
    """``snapshot`` (default: ``tiny_snapshot()``) pickled as NVlabs' training loop pickles it."""
    import io
    import sys
    import types

    module = types.ModuleType("torch_utils.persistence")
    module._reconstruct_persistent_obj = _reconstruct_persistent_obj
    _reconstruct_persistent_obj.__module__ = module.__name__
    saved = {name: sys.modules.get(name) for name in ("torch_utils", "torch_utils.persistence")}
    sys.modules.update({"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": module})
    try:
        buf = io.BytesIO()
        _SnapshotPickler(buf, protocol=4).dump(tiny_snapshot() if snapshot is None else snapshot)
    finally:
        for name, value in saved.items():
            if value is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = value
    path = Path(path)
    path.write_bytes(buf.getvalue())
    return path


class _StorageRunningACommand:
    """A tensor whose storage blob, a torch.save archive, pickles a call to os.system (the command)."""

    def __init__(self, command: str):
        import io
        import zipfile

        import torch

        plain = io.BytesIO()
        torch.save(torch.zeros(3).untyped_storage(), plain)
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(plain.getvalue())) as zin, zipfile.ZipFile(out, "w") as zout:
            for info in zin.infolist():
                data = zin.read(info.filename)
                zout.writestr(info, pickle.dumps(_RunsACommand(command), protocol=2)
                              if info.filename.endswith("data.pkl") else data)
        self.blob = out.getvalue()

    def __reduce__(self):
        import torch

        class Storage:
            def __reduce__(inner):
                return torch.storage._load_from_bytes, (self.blob,)

        return torch._utils._rebuild_tensor_v2, (Storage(), 0, (3,), (1,), False, {})


def write_storage_code_pickle(path, marker) -> Path:
    """A tiny snapshot whose w_avg's storage blob, when unpickled by plain ``pickle``/``torch.load``, would
    create ``marker`` through os.system."""
    snapshot = tiny_snapshot()
    snapshot["G_ema"].state["_modules"]["mapping"].state["_buffers"]["w_avg"] = \
        _StorageRunningACommand(f"touch {marker}")
    return write_snapshot(path, snapshot)
