"""Image folders read in a deterministic order, with a manifest and per-file error records.

A long run must not die on one bad file: a corrupt, truncated, unreadable or non-image
file, a broken link, a FIFO or device (also behind a link: never read, it could block or
never end) or a file over MAX_IMAGE_BYTES becomes an error record and is skipped
(``strict=True`` makes it fatal). Images are read as a photo viewer shows them: the EXIF orientation is applied,
transparent areas are shown over white, grayscale / palette / CMYK / 16-bit images become
8-bit RGB.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, ImageOps

from ..facts.errors import DatasetError, SkippedInput, UsageError
from .files import (
    SpecialFile,
    TooLarge,
    atomic_save_npz,
    atomic_write_text,
    first_line,
    megabytes,
    open_regular,
    record_outputs,
)
from .images import save_png, to_uint8

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm")
MAX_IMAGE_BYTES = 256 << 20  # per input file: a larger one is skipped, its record saying so


@dataclass
class ImageRecord:
    name: str  # path relative to the root, with '/' separators
    sha256: str
    status: str = "ok"  # "ok" or "error: ..."
    mode: str = ""
    size: tuple = ()
    bytes: int = -1
    mtime_ns: int = -1
    ctime_ns: int = -1  # changes whenever the content is rewritten, even if the mtime is set back

    def as_dict(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "status": self.status, "bytes": self.bytes,
                "mtime_ns": self.mtime_ns, "ctime_ns": self.ctime_ns}


class ImageFolder:
    """Images under ``root`` (recursively, sorted by relative path), loaded as [3, H, W] in [-1, 1].

    ``input_hw``: every image is resized to this (H, W) with PIL bilinear filtering, as the
    official ``transforms.Resize`` does; ``select``: a function choosing a subset of the
    sorted names (a domain's test-subset rule); ``limit``: the first ``limit`` of those;
    ``prepare(image, record)``: applied to each decoded RGB PIL image before the resize (face
    alignment); raising ``SkippedInput`` skips the image with that reason.
    """

    def __init__(self, root, input_hw: tuple = (256, 256), strict: bool = False, select=None,
                 limit: int | None = None, prepare=None):
        self.root = Path(root)
        self.input_hw, self.strict, self.prepare = tuple(input_hw), strict, prepare
        if not self.root.is_dir():
            what = "is a file, not a folder" if self.root.is_file() else "no such directory"
            raise DatasetError(f"{self.root}: {what} (give a folder of images)")
        # every non-folder entry with an image extension, special files and broken links included: they are
        # listed as skipped, with the reason, rather than silently left out
        names = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                       if p.suffix.lower() in IMAGE_EXTENSIONS and not p.is_dir())
        if not names:
            raise DatasetError(f"{self.root}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)}, "
                               "recursively)")
        if select is not None:
            names = select(names)
        if limit is not None:
            names = names[:limit]
        self.names = names
        self._records: dict = {}

    def __len__(self):
        return len(self.names)

    def load(self, index: int) -> tuple[torch.Tensor | None, ImageRecord]:
        """(image [3, H, W] float32 in [-1, 1] or None, its record)."""
        name = self.names[index]
        path = self.root / name
        record = ImageRecord(name, "")
        arr = None
        try:
            data, stat = read_image_bytes(path)
            record.sha256, record.bytes, record.mtime_ns, record.ctime_ns = hashlib.sha256(data).hexdigest(), \
                stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns
            prepare = None if self.prepare is None else (lambda img: self.prepare(img, record))
            arr, record.mode, record.size = decode_image(data, self.input_hw, prepare)
        except Exception as err:  # PIL raises many types for bad files
            record.status = unreadable_status(err, path)
        self._records[index] = record
        if arr is None:
            if self.strict:
                raise DatasetError(f"{path}: unreadable image ({record.status[7:]}); remove it or run without "
                                   "--strict to skip it")
            return None, record
        t = torch.from_numpy(arr).permute(2, 0, 1).float() / 255.0
        return (t - 0.5) / 0.5, record

    def load_batch(self, indices) -> tuple[list, torch.Tensor | None, list]:
        """(the readable indices, their images [B, 3, H, W] or None, the records of every index)."""
        loaded = [self.load(i) for i in indices]
        good = [(i, img) for i, (img, _) in zip(indices, loaded) if img is not None]
        images = torch.stack([img for _, img in good]) if good else None
        return [i for i, _ in good], images, [rec for _, rec in loaded]

    def batches(self, batch_size: int, start: int = 0, stop: int | None = None):
        """Yield ``load_batch`` of consecutive indices, batch_size at a time."""
        stop = len(self) if stop is None else min(stop, len(self))
        for b0 in range(start, stop, batch_size):
            yield self.load_batch(list(range(b0, min(stop, b0 + batch_size))))

    def manifest(self, previous: list | None = None) -> list[dict]:
        """name, sha256, status, bytes, mtime_ns, ctime_ns of every file. Entries of ``previous`` (an earlier
        manifest) whose file has the same size, mtime and ctime are reused instead of reading the file again
        (a file rewritten with its size and mtime kept still gets a new ctime; deleting the run's
        dataset_manifest.json re-reads every file)."""
        known = {e["name"]: e for e in previous or [] if isinstance(e, dict) and "ctime_ns" in e}
        out = []
        for i, name in enumerate(self.names):
            entry = known.get(name)
            if entry is not None and i not in self._records:
                try:
                    stat = (self.root / name).stat()
                    if (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns) == \
                            (entry.get("bytes"), entry["mtime_ns"], entry["ctime_ns"]):
                        out.append(entry)
                        continue
                except OSError:
                    pass
            record = self._records.get(i) or self.load_record(i)
            out.append(record.as_dict())
        return out

    def load_record(self, index: int) -> ImageRecord:
        try:
            return self.load(index)[1]
        except DatasetError:  # strict mode: the record is kept, the error comes when the batch is read
            return self._records[index]


def manifest_hash(entries: list[dict]) -> str:
    """The identity of a test set: names and contents, not where or when the files were written."""
    text = json.dumps([(m["name"], m["sha256"]) for m in entries])
    return hashlib.sha256(text.encode()).hexdigest()


def skipped(entries: list[dict]) -> list[dict]:
    return [e for e in entries if e["status"] != "ok"]


def png_names(names) -> dict:
    """source name -> output PNG name, never shared by two sources: ``a.jpg`` -> ``a.png``; when two
    would meet there (``a.jpg`` and ``a.png``), both keep their extension: ``a.jpg.png``, ``a.png.png``."""
    plain = {n: str(PurePosixPath(n).with_suffix(".png")) for n in names}
    counts = {}
    for target in plain.values():
        counts[target] = counts.get(target, 0) + 1
    return {n: (t if counts[t] == 1 else n + ".png") for n, t in plain.items()}


def read_image_bytes(path) -> tuple[bytes, os.stat_result]:
    """The bytes and stat of one input image: a regular file (also behind a link) of at most MAX_IMAGE_BYTES,
    else SpecialFile / TooLarge (a FIFO or a device is never read: it could block or never end)."""
    with open_regular(path, MAX_IMAGE_BYTES) as fh:
        stat = os.fstat(fh.fileno())
        data = fh.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        raise TooLarge(0, "it grew past the cap while being read", str(path))
    return data, stat


def unreadable_status(err: Exception, path: Path) -> str:
    """The status (``error: <reason>...``) recorded for an input that reading or decoding failed on."""
    if isinstance(err, SkippedInput):
        return f"error: {err}"
    if isinstance(err, FileNotFoundError):
        return "error: broken link (the file it points to is missing)" if path.is_symlink() \
            else "error: the file disappeared while the run was reading the folder"
    if isinstance(err, PermissionError):
        return "error: permission denied (not readable by this user)"
    if isinstance(err, SpecialFile):
        return f"error: not a regular file: {err.strerror.split(',')[0]}" + \
            (" behind a symlink" if path.is_symlink() else "")
    if isinstance(err, TooLarge):
        return f"error: over the size cap: {megabytes(path.stat().st_size)}, more than the " \
            f"{megabytes(MAX_IMAGE_BYTES)} read of one input file (data.MAX_IMAGE_BYTES)"
    return f"error: {type(err).__name__}: {first_line(err)}"


def write_skipped(path, pairs) -> None:
    """(name, status) pairs of skipped inputs as ``errors.csv`` (columns image, status)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["image", "status"])
    writer.writerows(pairs)
    atomic_write_text(path, buf.getvalue())


def count_reasons(statuses) -> str:
    """'no face found (MTCNN): 2, UnidentifiedImageError: 1' from skipped files' statuses ('error: <reason>: ...')."""
    counts = {}
    for status in statuses:
        reason = status.removeprefix("error: ").split(":")[0]
        counts[reason] = counts.get(reason, 0) + 1
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items()))


def open_image(data: bytes) -> tuple[Image.Image, str, tuple]:
    """Bytes -> (8-bit RGB PIL image as a viewer shows it: EXIF orientation applied, the original mode and size)."""
    with Image.open(io.BytesIO(data)) as probe:
        probe.verify()  # catches truncated / corrupt files that open() alone accepts
    img = Image.open(io.BytesIO(data))
    img.load()
    return to_rgb(ImageOps.exif_transpose(img)), img.mode, img.size


def decode_image(data: bytes, input_hw: tuple, prepare=None) -> tuple[np.ndarray, str, tuple]:
    """Bytes -> uint8 [H, W, 3] resized to input_hw (bilinear, PIL), plus the original mode and size.
    ``prepare``: RGB PIL image -> PIL image, applied before the resize (face alignment)."""
    img, mode, size = open_image(data)
    if prepare is not None:
        img = prepare(img)
    h, w = input_hw
    if img.size != (w, h):
        img = img.resize((w, h), Image.Resampling.BILINEAR)
    return np.array(img, dtype=np.uint8), mode, size


def to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB from any PIL mode: 16/32-bit gray scaled down, transparency shown over white, palettes
    and CMYK converted."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(np.round(arr / peak * 255), 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(np.round(arr * 255 if arr.max() <= 1 else arr), 0, 255).astype(np.uint8), "L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def image_folder_for_domain(root, domain, strict=False, limit=None, prepare=None) -> ImageFolder:
    return ImageFolder(root, input_hw=domain.input_hw, strict=strict, select=domain.select_test_files, limit=limit,
                       prepare=prepare)


@torch.no_grad()
def write_generated_set(generator, w_avg, out_dir, n: int = 32, seed: int = 0, truncation: float = 0.7) -> Path:
    """n generator samples as PNGs plus their true w+ codes in ``latents.npz`` (names, latents
    [n, n_styles, D]): inverting them, ``evaluate`` also reports each method's ``latent_mse``.

    w = w_avg + truncation * (mapping(z) - w_avg), z seeded; fixed noise maps.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UsageError(f"--out {out_dir} is not an empty folder; give a new one")
    p = next(generator.parameters())
    z = torch.randn(n, generator.style_dim, generator=torch.Generator().manual_seed(seed)).to(p.device, p.dtype)
    centre = w_avg.reshape(1, -1).to(p.device, p.dtype)
    w = centre + truncation * (generator.style(z) - centre)
    names, latents = [], []
    record_outputs(out_dir, "sample", [f"sample_{i:04d}.png" for i in range(n)] + ["latents.npz"])
    for start in range(0, n, 16):
        img, latent = generator([w[start:start + 16]], input_is_latent=True, randomize_noise=False,
                                return_latents=True)
        for k, arr in enumerate(to_uint8(img)):
            names.append(f"sample_{start + k:04d}.png")
            save_png(arr, out_dir / names[-1])
        latents.append(latent.float().cpu().numpy())
    atomic_save_npz(out_dir / "latents.npz", names=np.array(names), latents=np.concatenate(latents))
    return out_dir
