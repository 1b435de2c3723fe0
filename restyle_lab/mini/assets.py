"""The shipped mini weights: a manifest with sha256, size and how each file was trained."""

from __future__ import annotations

import json

from ..facts.mini_models import ASSETS, MINI_MODELS
from ..records.files import atomic_write_text, read_torch, sha256_file
from ..records.packing import PACKED_KEY

MANIFEST = ASSETS / "MANIFEST.json"
BUDGET_BYTES = 50 * 1000 * 1000


def build_manifest() -> dict:
    """Describe every shipped file (run after exporting; commit the result)."""
    files = {}
    for model in MINI_MODELS:
        if not model.path.exists():
            continue
        ckpt = read_torch(model.path)
        training = ckpt.get("training", {})
        packed = ckpt.get(PACKED_KEY)
        stored = ckpt.get("stored") or (f"{packed['format']} encoder, decoder from {packed['decoder_file']}"
                                        if packed else "rosinality generator layout, float32")
        files[model.file] = {"preset": model.preset, "kind": model.kind, "description": model.description,
                             "sha256": sha256_file(model.path), "bytes": model.path.stat().st_size, "stored": stored,
                             "trained_steps": training.get("trained_steps"),
                             "train_minutes": round(training.get("train_minutes", 0.0), 1),
                             "losses": training.get("losses")}
        if "held_out" in training:  # the attribute regressor's accuracy on test-split renders
            files[model.file]["held_out"] = training["held_out"]
    return {"regenerate": "restyle-lab train --preset <preset> --export restyle_lab/assets/mini/<file>",
            "files": files}


def write_manifest() -> dict:
    manifest = build_manifest()
    atomic_write_text(MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return manifest


def verify() -> list[str]:
    """Problems with the shipped files (empty list when all is well)."""
    if not MANIFEST.exists():
        return [f"{MANIFEST} is missing"]
    manifest = json.loads(MANIFEST.read_text())["files"]
    problems = []
    for file, entry in manifest.items():
        path = ASSETS / file
        if not path.exists():
            problems.append(f"{file}: listed but missing")
        elif sha256_file(path) != entry["sha256"]:
            problems.append(f"{file}: sha256 differs from the manifest")
    for path in ASSETS.glob("*.pt"):
        if path.name not in manifest:
            problems.append(f"{path.name}: shipped but not in the manifest")
    total = sum(p.stat().st_size for p in ASSETS.glob("*.pt"))
    if total > BUDGET_BYTES:
        problems.append(f"shipped weights take {total / 1e6:.1f} MB, over the {BUDGET_BYTES / 1e6:.0f} MB budget")
    return problems
