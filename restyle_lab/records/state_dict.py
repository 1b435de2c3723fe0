"""Strict state-dict loading: every missing, unexpected and wrong-shape key reported, grouped
by module, before any weight is touched (fvcore's loudness, and stricter)."""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field

import torch

from ..facts.errors import CheckpointError


@dataclass
class LoadReport:
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    wrong_shape: list = field(default_factory=list)  # (key, expected, found)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.wrong_shape)

    def format(self, limit: int = 4) -> str:
        lines = []
        for title, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            if keys:
                lines.append(f"  {title} keys ({len(keys)}):")
                for group, members in _group_keys(keys).items():
                    shown = ", ".join(members[:limit]) + (", ..." if len(members) > limit else "")
                    lines.append(f"    {group} [{len(members)}]: {shown}")
        if self.wrong_shape:
            lines.append(f"  wrong-shape keys ({len(self.wrong_shape)}):")
            for key, expected, found in self.wrong_shape[: limit * 3]:
                lines.append(f"    {key}: model {tuple(expected)}, file {tuple(found)}")
            if len(self.wrong_shape) > limit * 3:
                lines.append(f"    ... and {len(self.wrong_shape) - limit * 3} more")
        return "\n".join(lines)


def _group_keys(keys) -> dict:
    """Keys grouped by their top-level module (``styles.*``, ``body.*``, ...)."""
    groups = defaultdict(list)
    for key in keys:
        head = key.split(".")[0]
        groups[head + ".*" if "." in key else key].append(key)
    return dict(groups)


def compare_state_dict(module: torch.nn.Module, state_dict) -> LoadReport:
    own = module.state_dict()
    report = LoadReport()
    report.missing = [k for k in own if k not in state_dict]
    report.unexpected = [k for k in state_dict if k not in own]
    report.wrong_shape = [(k, own[k].shape, state_dict[k].shape) for k in own
                          if k in state_dict and tuple(own[k].shape) != tuple(state_dict[k].shape)]
    return report


def load_strict(module: torch.nn.Module, state_dict, what: str, source) -> None:
    """load_state_dict(strict=True) that reports every mismatch, grouped, before touching weights, and
    refuses weights holding NaN or inf (they give NaN outputs without a word)."""
    bad = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{source}: {what} entries that are not tensors: {bad[:5]}")
    report = compare_state_dict(module, state_dict)
    if report.ok:
        check_finite(state_dict, what, source)
    if not report.ok:
        raise CheckpointError(f"{source}: the {what} weights do not match the architecture "
                              f"{_describe(module)}:\n{report.format()}")
    module.load_state_dict(state_dict, strict=True)


def check_finite(tensors: dict, what: str, source) -> None:
    """CheckpointError naming the entries of ``tensors`` that hold NaN or inf."""
    bad = [k for k, v in tensors.items() if v is not None and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{source}: non-finite values (NaN or inf) in {what} {', '.join(bad[:4])}"
                              f"{' ...' if len(bad) > 4 else ''}: a damaged file or a diverged training run; nothing "
                              "is computed with it")


def _describe(module) -> str:
    config = getattr(module, "config", None)
    return f"({type(module).__name__}, {config})" if config is not None else f"({type(module).__name__})"


def split_prefix(state_dict, prefix: str) -> OrderedDict:
    """Entries under ``prefix.`` with the prefix removed."""
    cut = len(prefix) + 1
    return OrderedDict((k[cut:], v) for k, v in state_dict.items() if isinstance(k, str) and k.startswith(prefix + "."))
