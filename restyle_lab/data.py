"""Image folders read in a deterministic order, with a manifest and per-file error rows.

A long run must not die on one bad file: a corrupt, truncated or non-image file becomes
an error row and is skipped (``strict=True`` makes it fatal). Grayscale, RGBA, palette
and 16-bit images are converted to 8-bit RGB.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm")


class DatasetError(Exception):
    pass


@dataclass
class ImageRecord:
    name: str  # path relative to the root, with '/' separators
    sha256: str
    status: str = "ok"  # "ok" or "error: ..."
    mode: str = ""
    size: tuple = ()


@dataclass
class ImageFolder:
    """Images under ``root`` (recursively, sorted by relative path), loaded as [3, H, W] in [-1, 1].

    ``input_hw``: every image is resized to this (H, W) with PIL bilinear filtering, as the
    official ``transforms.Resize`` does; ``select``: a function choosing a subset of the
    sorted names (a domain's test-subset rule).
    """

    root: Path
    input_hw: tuple = (256, 256)
    strict: bool = False
    select: object = None
    limit: int | None = None
    records: list = field(default_factory=list)

    def __post_init__(self):
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: no such directory (give a folder of images)")
        names = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                       if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not names:
            raise DatasetError(f"{self.root}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)}, "
                               "recursively)")
        if self.select is not None:
            names = self.select(names)
        if self.limit is not None:
            names = names[: self.limit]
        self.names = names
        self._cache: dict = {}

    def __len__(self):
        return len(self.names)

    def load(self, index: int) -> tuple[torch.Tensor | None, ImageRecord]:
        """(image [3, H, W] float32 in [-1, 1] or None, its record)."""
        name = self.names[index]
        path = self.root / name
        data = path.read_bytes()
        record = ImageRecord(name, hashlib.sha256(data).hexdigest())
        try:
            arr, record.mode, record.size = decode_image(data, self.input_hw)
        except Exception as err:  # PIL raises many types for bad files
            record.status = f"error: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            if self.strict:
                raise DatasetError(f"{path}: unreadable image ({record.status[7:]}); remove it or run without "
                                   "--strict to skip it") from None
            return None, record
        t = torch.from_numpy(arr).permute(2, 0, 1).float() / 255.0
        return (t - 0.5) / 0.5, record

    def batches(self, batch_size: int, start: int = 0, stop: int | None = None):
        """Yield (indices, images [B, 3, H, W], records of every index including errors)."""
        stop = len(self) if stop is None else min(stop, len(self))
        for b0 in range(start, stop, batch_size):
            idx = list(range(b0, min(stop, b0 + batch_size)))
            loaded = [self.load(i) for i in idx]
            good = [(i, img) for i, (img, _) in zip(idx, loaded) if img is not None]
            images = torch.stack([img for _, img in good]) if good else None
            yield [i for i, _ in good], images, [rec for _, rec in loaded]

    def manifest(self) -> list[dict]:
        """name, sha256, status of every file (reads each file once)."""
        if not self.records:
            self.records = [self.load(i)[1] for i in range(len(self))]
        return [{"name": r.name, "sha256": r.sha256, "status": r.status} for r in self.records]

    def manifest_hash(self) -> str:
        text = json.dumps([(m["name"], m["sha256"]) for m in self.manifest()])
        return hashlib.sha256(text.encode()).hexdigest()


def decode_image(data: bytes, input_hw: tuple) -> tuple[np.ndarray, str, tuple]:
    """Bytes -> uint8 [H, W, 3] resized to input_hw (bilinear, PIL), plus the original mode and size."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as probe:
        probe.verify()  # catches truncated / corrupt files that open() alone accepts
    img = Image.open(io.BytesIO(data))
    img.load()
    mode, size = img.mode, img.size
    img = to_rgb(img)
    h, w = input_hw
    if img.size != (w, h):
        img = img.resize((w, h), Image.Resampling.BILINEAR)
    return np.array(img, dtype=np.uint8), mode, size


def to_rgb(img):
    """8-bit RGB from any PIL mode: 16/32-bit gray scaled down, alpha dropped, palettes expanded."""
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(np.round(arr / peak * 255), 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(np.round(arr * 255 if arr.max() <= 1 else arr), 0, 255).astype(np.uint8), "L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert("RGB")


def image_folder_for_domain(root, domain, strict=False, limit=None) -> ImageFolder:
    return ImageFolder(root, input_hw=domain.input_hw, strict=strict, select=domain.select_test_files, limit=limit)


def write_manifest(folder: ImageFolder, path) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"root": str(folder.root), "files": folder.manifest()}, indent=0))
    os.replace(tmp, path)
    return folder.manifest_hash()
