"""``restyle-lab invert``: one checkpoint over a folder of images, saved like the official scripts.

It runs the evaluation's inverters and traces (``inversion.inverters``; untimed, no warm-up pass). A run
writes into a staging folder inside ``--out`` and moves its outputs in only once it has succeeded, so a
failed ``--overwrite`` keeps the earlier outputs as they were; it never replaces a file another command
wrote (``files.refuse_foreign``).
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..faces.align import FaceAligner, size_for
from ..facts.defaults import DEFAULTS
from ..facts.devices import check_impl, parse_device, weights_and_compute
from ..facts.errors import DatasetError, EvaluationError, UsageError
from ..facts.methods import positive_int
from ..models import set_impl
from ..models.checkpoints import load_network
from ..records.data import IMAGE_EXTENSIONS, ImageFolder, count_reasons, png_names, write_skipped
from ..records.files import atomic_save_npy, atomic_save_npz, record_outputs, refuse_foreign
from ..records.images import save_png, to_uint8
from .inverters import inverter_for

# everything invert writes into --out (and all that --overwrite replaces, once the new run has succeeded)
OUTPUTS = ("inference_results", "inference_coupled", "latents.npy", "latents.npz", "errors.csv", "avg_image.png",
           "aligned", "alignment.csv")
STAGING = ".invert-new-"  # a run writes into --out/<STAGING><pid>-<hex>/ and moves its outputs in at the end

output_names = png_names  # input name -> output PNG path relative to a step folder


def _check_out(out: Path, overwrite: bool) -> bool:
    """Refuse an --out that is a file, a used folder without --overwrite, or one holding files of invert's
    names that invert did not write; nothing is changed. Returns whether earlier outputs are there."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder (created if missing)")
    entries = [p.name for p in out.iterdir() if not p.name.startswith(STAGING)] if out.is_dir() else []
    if entries and not overwrite:
        raise UsageError(f"--out {out} already holds files ({', '.join(sorted(entries)[:4])}...); choose a new "
                         "folder, or add --overwrite to replace the outputs of an earlier invert there")
    refuse_foreign(out, "invert", OUTPUTS, "--out")
    return any(name in OUTPUTS for name in entries)


def _stage(out: Path) -> Path:
    """A new folder inside --out for this run's outputs; those of runs killed before they finished go."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob(f"{STAGING}*"):
        pid = old.name[len(STAGING):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    stage = out / f"{STAGING}{os.getpid()}-{secrets.token_hex(4)}"
    stage.mkdir()
    return stage


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _swap_in(stage: Path, out: Path, names) -> None:
    """Replace invert's earlier outputs in ``out`` by those in ``stage``: each output moves as one rename."""
    record_outputs(out, "invert", names)
    trash = stage / ".replaced"
    trash.mkdir()
    for name in OUTPUTS:
        if os.path.lexists(out / name):
            os.replace(out / name, trash / name)
        if os.path.lexists(stage / name):
            os.replace(stage / name, out / name)


def _folder(images: Path, input_hw, strict, prepare=None) -> ImageFolder:
    if images.is_file():
        if images.suffix.lower() not in IMAGE_EXTENSIONS:
            raise UsageError(f"--images {images} is not an image file ({', '.join(IMAGE_EXTENSIONS)}) or a folder")
        return ImageFolder(images.parent, input_hw=input_hw, strict=strict,
                           select=lambda names: [n for n in names if n == images.name], prepare=prepare)
    return ImageFolder(images, input_hw=input_hw, strict=strict, prepare=prepare)


def invert_folder(checkpoint, images, out, steps=DEFAULTS.steps, coupled=False, full_size=False, device=DEFAULTS.device,
                  dtype=DEFAULTS.dtype, impl=DEFAULTS.impl, batch_size=DEFAULTS.batch_size, strict=False, overwrite=False,
                  progress=True, align=False, log=print) -> Path:
    """Per-step PNGs in ``out/inference_results/<step>/``, ``latents.npy`` (official dict layout, keyed by the
    image path relative to --images), ``latents.npz``, optional input|steps strips in ``out/inference_coupled/``,
    and ``errors.csv`` listing every skipped file with its reason. ``align``: each photo is replaced by the FFHQ
    crop of its largest face first (``out/aligned/``, ``out/alignment.csv``; photos without a face skipped)."""
    steps = positive_int(steps, "--steps")
    batch_size = positive_int(batch_size, "--batch-size")
    (dt, compute), dev = weights_and_compute(dtype), parse_device(device)
    out, images = Path(out), Path(images)
    if not images.exists():
        raise UsageError(f"--images {images}: no such file or folder")
    net = set_impl(load_network(checkpoint, device=dev, dtype=dt), check_impl(impl))
    inverter = inverter_for(net, steps, dtype=compute, resize=not full_size, warmup=False)
    aligner = FaceAligner(size_for(net.geometry.input_hw), dev) if align else None
    folder = _folder(images, net.geometry.input_hw, strict, aligner)
    had_outputs = _check_out(out, overwrite)
    created = not out.exists()
    stage, swapped = _stage(out), False
    try:
        names_all, errors = _invert_into(stage, inverter, folder, coupled, batch_size, progress)
        if aligner is not None:
            aligner.write_record(stage, folder.names)
        if errors:
            write_skipped(stage / "errors.csv", errors)
        swapped = bool(names_all) or not had_outputs  # a failed run keeps an earlier run's outputs as they were
        if swapped:
            _swap_in(stage, out, OUTPUTS)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created and not swapped and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
    if aligner is not None and swapped:
        log(f"aligned {len(aligner.rows)} face(s) ({out / 'alignment.csv'}, crops in {out / 'aligned'})")
    if errors and swapped:
        log(f"skipped {len(errors)} of {len(folder)} input file(s) ({count_reasons(s for _, s in errors)}); each is "
            f"listed with its reason in {out / 'errors.csv'}")
    if not names_all:
        where = f"see {out / 'errors.csv'}" if swapped else \
            f"{count_reasons(s for _, s in errors)}; the earlier outputs in {out} are kept as they were"
        raise DatasetError(f"no image in {images} could be read ({len(errors)} file(s)); {where}")
    return out


def _invert_into(stage: Path, inverter, folder, coupled: bool, batch_size: int, progress: bool) -> tuple[list, list]:
    """Every readable image of ``folder`` inverted, its outputs written into ``stage``; returns (the names
    inverted, (name, reason) of every file skipped)."""
    targets = output_names(folder.names)
    if inverter.net.is_restyle:  # the official script's output beside the steps
        save_png(to_uint8(inverter.avg)[0], stage / "avg_image.png")
    official, names_all, latents_all, errors = {}, [], [], []
    n_batches = (len(folder) + batch_size - 1) // batch_size
    for indices, x, records in tqdm(folder.batches(batch_size), total=n_batches, desc="invert", disable=not progress):
        errors += [(r.name, r.status) for r in records if r.status != "ok"]
        if x is None:
            continue
        trace = inverter.invert(x)
        latents = torch.stack([s.latent for s in trace.steps])  # [S, B, n_styles, D]
        if not torch.isfinite(latents).all():
            bad = [folder.names[i] for j, i in enumerate(indices) if not torch.isfinite(latents[:, j]).all()]
            raise EvaluationError(f"{inverter.net.info.path}: non-finite latents (NaN or inf) for {', '.join(bad[:4])}"
                                  f"{' ...' if len(bad) > 4 else ''}; nothing was written. Check the checkpoint "
                                  "(`restyle-lab info`) and --dtype")
        pics = [to_uint8(s.image) for s in trace.steps]
        for j, i in enumerate(indices):
            name = folder.names[i]
            for s, pic in enumerate(pics):
                save_png(pic[j], stage / "inference_results" / str(s) / targets[name])
            if coupled:
                h, w = pics[0].shape[1:3]
                source = Image.fromarray(to_uint8(x[j])[0]).resize((w, h), Image.Resampling.BILINEAR)
                strip = np.concatenate([np.asarray(source)] + [p[j] for p in pics], axis=1)
                save_png(strip, stage / "inference_coupled" / targets[name])
            lat = [latents[s, j].numpy() for s in range(latents.shape[0])]
            official[name] = lat
            names_all.append(name)
            latents_all.append(np.stack(lat))
    if names_all:
        atomic_save_npy(stage / "latents.npy", official)
        atomic_save_npz(stage / "latents.npz", names=np.array(names_all), latents=np.stack(latents_all))
    return names_all, errors
