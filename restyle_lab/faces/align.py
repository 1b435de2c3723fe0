"""Aligning photos: ``restyle-lab align`` over a folder, and the ``--align`` step of ``invert`` / ``evaluate``.

A photo without a face is skipped with the reason ``no face found``, counted and listed like an
unreadable file (``errors.csv``). Every aligned face is recorded in ``alignment.csv``: source, output,
face index, how many faces the photo has, MTCNN's box, score and landmarks, and the quad cropped.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image
from tqdm.auto import tqdm

from ..facts.errors import DatasetError, SkippedInput, UsageError
from ..records.data import (
    IMAGE_EXTENSIONS,
    count_reasons,
    open_image,
    png_names,
    read_image_bytes,
    unreadable_status,
    write_skipped,
)
from ..records.files import atomic_write, atomic_write_text
from .landmarks import DETECTOR, Face, FaceDetector
from .recipe import SIZES, align_face

NO_FACE = "no face found"
RECIPE = "FFHQ (eye centres and mouth corners -> oriented quad, shrink, crop, reflect-pad with blur, 4x supersampled)"
COLUMNS = ("source", "output", "face", "faces_in_photo", "score", "box", "eye_left", "eye_right", "mouth_left",
           "mouth_right", "quad")


def _row(source: str, output: str, index: int, n_faces: int, face: Face, quad) -> dict:
    pts = face.points
    fmt = lambda v: " ".join(f"{float(x):.2f}" for x in v)  # noqa: E731
    return {"source": source, "output": output, "face": index, "faces_in_photo": n_faces, "score": f"{face.score:.4f}",
            "box": fmt(face.box), "eye_left": fmt(pts.eye_left), "eye_right": fmt(pts.eye_right),
            "mouth_left": fmt(pts.mouth_left), "mouth_right": fmt(pts.mouth_right), "quad": fmt(quad.ravel())}


def write_rows(path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def describe(size: int, all_faces: bool = False) -> dict:
    """What an aligned run records in its provenance."""
    return {"recipe": RECIPE, "landmarks": DETECTOR, "size": size, "faces": "all" if all_faces else "the largest"}


class FaceAligner:
    """The ``prepare`` step of ``ImageFolder`` (``restyle_lab.records.data``): each photo becomes the FFHQ crop of its
    largest face, or is skipped with ``no face found``. Crops are kept (PNG bytes) for the process, so a
    second read of the same file (evaluate's manifest, then its batch) runs neither MTCNN nor the crop again.
    """

    def __init__(self, size: int = 256, device="cpu"):
        if size not in SIZES:
            raise UsageError(f"alignment size must be one of {SIZES}. Got: {size}")
        self.size, self.detector = size, FaceDetector(device)
        self._done: dict = {}  # (name, sha256) -> PNG bytes of the crop, or None (no face)
        self.rows: dict = {}  # name -> alignment.csv row

    def __call__(self, img: Image.Image, record) -> Image.Image:
        key = (record.name, record.sha256)
        if key not in self._done:
            faces = self.detector.detect(img)
            if not faces:
                self._done[key] = None
            else:
                crop, quad = align_face(img, faces[0].points, self.size)
                buf = io.BytesIO()
                crop.save(buf, format="PNG")
                self._done[key] = buf.getvalue()
                self.rows[record.name] = _row(record.name, record.name, 0, len(faces), faces[0], quad)
        if self._done[key] is None:
            raise SkippedInput(f"{NO_FACE} (MTCNN)")
        return Image.open(io.BytesIO(self._done[key])).convert("RGB")

    def describe(self) -> dict:
        return describe(self.size)

    def write_record(self, folder: Path, names) -> None:
        """``folder/alignment.csv`` (rows of earlier runs there kept, this process's replacing them) and the
        crops in ``folder/aligned/``; ``names``: every source name of the input folder."""
        targets = png_names(names)
        rows = dict(self.rows)
        path = folder / "alignment.csv"
        if path.is_file():
            with open(path, newline="") as fh:
                rows = {**{r["source"]: r for r in csv.DictReader(fh)}, **rows}
        for (name, _), png in self._done.items():
            if png is not None:
                atomic_write(folder / "aligned" / targets[name], lambda tmp, data=png: tmp.write_bytes(data))
        for name, row in rows.items():
            row["output"] = f"aligned/{targets.get(name, name)}"
        write_rows(path, [rows[n] for n in sorted(rows)])


def _numbered(png: str, index: int) -> str:
    path = PurePosixPath(png)
    return str(path.with_name(f"{path.stem}_{index}{path.suffix}"))


@dataclass
class AlignReport:
    out: Path
    images: int
    faces: int
    skipped: list  # (name, status)


def _sources(images: Path) -> tuple[Path, list[str]]:
    if images.is_file():
        if images.suffix.lower() not in IMAGE_EXTENSIONS:
            raise UsageError(f"--images {images} is not an image file ({', '.join(IMAGE_EXTENSIONS)}) or a folder")
        return images.parent, [images.name]
    if not images.is_dir():
        raise UsageError(f"--images {images}: no such file or folder")
    names = sorted(p.relative_to(images).as_posix() for p in images.rglob("*")
                   if p.suffix.lower() in IMAGE_EXTENSIONS and (p.is_file() or p.is_symlink()))
    if not names:
        raise DatasetError(f"{images}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)}, recursively)")
    return images, names


def align_folder(images, out, size: int = 256, all_faces: bool = False, device="cpu", log=print,
                 progress: bool = True) -> AlignReport:
    """FFHQ crops of the faces in ``images`` (a folder, searched recursively, or one file) -> ``out``.

    Each photo gives ``<name>.png`` (its largest face) or, with ``all_faces``, ``<name>_<k>.png`` for
    every face, largest first (``a.jpg`` -> ``a.png``, see ``png_names``). ``out/alignment.csv`` records
    each face; ``out/errors.csv`` lists the photos skipped (no face, unreadable) with their reasons.
    ``out`` must be new or empty. Photos are read as every other command reads images (regular files only,
    of at most ``data.MAX_IMAGE_BYTES``). The outputs are written into a hidden folder beside ``out`` that
    becomes ``out`` at the end, so a run stopped half-way leaves ``out`` as it was.
    """
    if size not in SIZES:
        raise UsageError(f"--size must be one of {', '.join(map(str, SIZES))}. Got: {size}")
    images, out = Path(images), Path(out)
    root, names = _sources(images)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out} is not an empty folder; give a new one")
    detector = FaceDetector(device)
    targets = png_names(names)
    rows, skipped = [], []
    final = out.resolve()  # also when --out is "." or ends in ".."
    stage = final.parent / f".{final.name}.align-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        for name in tqdm(names, desc="align", disable=not progress):
            try:
                img = open_image(read_image_bytes(root / name)[0])[0]
            except Exception as err:  # PIL raises many types for bad files
                skipped.append((name, unreadable_status(err, root / name)))
                continue
            faces = detector.detect(img)
            if not faces:
                skipped.append((name, f"error: {NO_FACE} (MTCNN)"))
                continue
            for k, face in enumerate(faces if all_faces else faces[:1]):
                crop, quad = align_face(img, face.points, size)
                target = _numbered(targets[name], k) if all_faces else targets[name]
                atomic_write(stage / target, lambda tmp, c=crop: c.save(tmp, format="PNG"))
                rows.append(_row(name, target, k, len(faces), face, quad))
        stage.mkdir(parents=True, exist_ok=True)
        if skipped:
            write_skipped(stage / "errors.csv", skipped)
        if rows:
            write_rows(stage / "alignment.csv", rows)
        os.rename(stage, final)  # over a missing or empty folder
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    if skipped:
        log(f"skipped {len(skipped)} of {len(names)} image(s) ({count_reasons(st for _, st in skipped)}); each is "
            f"listed with its reason in {out / 'errors.csv'}")
    if not rows:
        if all(st.startswith(f"error: {NO_FACE}") for _, st in skipped):
            raise DatasetError(f"no face found in any of the {len(names)} image(s) of {images}; see "
                               f"{out / 'errors.csv'}")
        raise DatasetError(f"none of the {len(names)} image(s) of {images} could be aligned "
                           f"({count_reasons(st for _, st in skipped)}); see {out / 'errors.csv'}")
    return AlignReport(out, len(names), len(rows), skipped)


def size_for(input_hw) -> int:
    """The alignment size for a network reading ``input_hw`` images: the smallest of SIZES that covers it."""
    return next((s for s in SIZES if s >= max(input_hw)), SIZES[-1])
