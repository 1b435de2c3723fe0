"""Reading NVlabs stylegan2-ada-pytorch network pickles without running anything in them.

A snapshot (``network-snapshot-*.pkl``) is a plain Python pickle. Its modules are NVlabs
"persistent" objects: each is pickled as a call to
``torch_utils.persistence._reconstruct_persistent_obj(meta)``, and ``meta`` carries the
Python source of the module that defined the class. ``pickle.load`` (and NVlabs'
``legacy.load_network_pkl``) execute that source. This reader never does: its unpickler
resolves only the handful of globals such a file needs, each to a function written here
that rebuilds plain data, and refuses every other global before anything is called.

What comes back: dicts (``EasyDict`` for ``dnnlib.util.EasyDict``), OrderedDicts, tensors
(each storage is a nested ``torch.save`` blob, read with ``weights_only=True``), numpy
dtypes and scalars, and a ``PersistentRecord`` per persistent object: its class name,
parameters, buffers, child records, constructor arguments and other plain attributes.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..facts.errors import CheckpointError
from .files import open_network_file, unpickling_reason


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a dict whose keys also read as attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass
class PersistentRecord:
    """One NVlabs persistent object (a network module), as data. ``source_sha256`` identifies the
    embedded source, which is kept neither in memory nor on disk."""

    class_name: str
    source_sha256: str
    parameters: dict = field(default_factory=dict)  # name -> tensor (None where unset)
    buffers: dict = field(default_factory=dict)
    modules: dict = field(default_factory=dict)  # name -> PersistentRecord (or None)
    init_args: tuple = ()
    init_kwargs: dict = field(default_factory=dict)
    attributes: dict = field(default_factory=dict)  # the rest of the object's __dict__

    def child(self, name: str) -> "PersistentRecord":
        value = self.modules.get(name)
        if not isinstance(value, PersistentRecord):
            raise KeyError(name)
        return value


class Refused(pickle.UnpicklingError):
    """A global outside the allowed set; raised before the global is resolved, so nothing runs."""


def _storage(blob):
    if not isinstance(blob, (bytes, bytearray)):
        raise pickle.UnpicklingError(f"a tensor storage must be a torch.save blob, found {type(blob).__name__}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TypedStorage deprecation notices
            storage = torch.load(io.BytesIO(bytes(blob)), map_location="cpu", weights_only=True)
    except Exception as err:  # torch's own text would advise weights_only=False: never passed on
        reason = unpickling_reason(err)
        if reason.startswith("it references "):
            raise Refused(f"{reason[len('it references '):]} (inside a tensor storage blob)") from None
        raise pickle.UnpicklingError(f"a tensor storage blob is not a plain torch.save storage ({reason})") from None
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise pickle.UnpicklingError(f"a storage blob holds {type(storage).__name__}, not a storage")
    return storage


def _tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    if not isinstance(storage, torch.TypedStorage):
        raise pickle.UnpicklingError(f"a tensor needs a typed storage, found {type(storage).__name__}")
    t = torch.empty((0,), dtype=storage.dtype)
    # the bytes behind the typed storage (its public accessor only adds a deprecation warning)
    return t.set_(storage._untyped_storage, int(offset), tuple(size), tuple(stride))


def _parameter(data, requires_grad=False, hooks=None, *rest):
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError(f"a parameter must wrap a tensor, found {type(data).__name__}")
    return data


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError(f"numpy scalar of dtype {dtype!r} refused (only plain numeric scalars)")
    return np.frombuffer(bytes(data), dtype=dtype, count=1)[0]


def _numpy_dtype(spec, align=False, copy=False):
    dtype = np.dtype(spec, align=bool(align))
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"numpy dtype {spec!r} holds Python objects; refused")
    return dtype


# the modules whose __dict__ entries are bookkeeping, not network state
_MODULE_BOOKKEEPING_PREFIXES = ("_forward", "_backward", "_state_dict", "_load_state_dict", "_non_persistent")


def _persistent(meta):
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("class_name"), str):
        raise pickle.UnpicklingError("a persistent object without a class record (type 'class', class_name)")
    state = meta.get("state") or {}
    if not isinstance(state, dict):
        raise pickle.UnpicklingError(f"persistent {meta['class_name']}: its state is not a dict")
    source = meta.get("module_src") or ""
    record = PersistentRecord(meta["class_name"], hashlib.sha256(str(source).encode()).hexdigest(),
                              parameters=dict(state.get("_parameters") or {}),
                              buffers=dict(state.get("_buffers") or {}), modules=dict(state.get("_modules") or {}),
                              init_args=tuple(state.get("_init_args") or ()),
                              init_kwargs=dict(state.get("_init_kwargs") or {}))
    for key, value in state.items():
        if key not in ("_parameters", "_buffers", "_modules", "_init_args", "_init_kwargs") \
                and not key.startswith(_MODULE_BOOKKEEPING_PREFIXES):
            record.attributes[key] = value
    for name, child in record.modules.items():
        if child is not None and not isinstance(child, PersistentRecord):
            raise pickle.UnpicklingError(f"persistent {meta['class_name']}: child {name!r} is a "
                                         f"{type(child).__name__}, not a persistent module")
    return record


# (module, name) -> what it is rebuilt with; everything a stylegan2-ada-pytorch snapshot references
ALLOWED_GLOBALS = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _tensor,
    ("torch._utils", "_rebuild_parameter"): _parameter,
    ("torch.storage", "_load_from_bytes"): _storage,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        rebuild = ALLOWED_GLOBALS.get((module, name))
        if rebuild is None:
            raise Refused(f"{module}.{name}")
        return rebuild

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not used by NVlabs snapshots")


def read_snapshot(path) -> dict:
    """An NVlabs network pickle -> its top-level dict (``G``, ``D``, ``G_ema`` as ``PersistentRecord``s, ...).

    Raises ``CheckpointError`` (one line, naming the file) for a refused global (named), a
    truncated or corrupt file, or a pickle that is not a dict. Nothing in the file is executed.
    """
    path = Path(path)
    fh = open_network_file(path, "an NVlabs network pickle (.pkl)")
    try:
        with fh:
            if fh.read(4) == b"PK\x03\x04":
                raise CheckpointError(f"{path}: a torch.save zip archive (a PyTorch checkpoint), not an NVlabs network "
                                      "pickle; a generator file in that format needs no conversion: give it a .pt "
                                      "name and use it as it is")
            fh.seek(0)
            value = _Unpickler(fh).load()
    except Refused as err:
        raise CheckpointError(f"{path}: refused: the pickle references {err}, which restyle-lab does not rebuild "
                              "(an NVlabs stylegan2-ada-pytorch snapshot needs only its network records, tensors, "
                              "dicts and numpy scalars); nothing in the file was run") from None
    except CheckpointError:
        raise
    except Exception as err:  # truncated or corrupt: EOFError, UnpicklingError, ValueError, ...
        size = path.stat().st_size
        raise CheckpointError(f"{path}: not a readable NVlabs network pickle ({size} bytes; truncated or corrupt?): "
                              f"{unpickling_reason(err)}") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: an NVlabs snapshot pickles a dict (G, D, G_ema, ...); this one holds "
                              f"{type(value).__name__}")
    return value
