"""``restyle-lab invert``: one checkpoint over a folder of images, saved like the official scripts."""

from __future__ import annotations

import csv
import io
import os
import secrets
import shutil
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from .checkpoints import load_network
from .data import IMAGE_EXTENSIONS, ImageFolder, count_reasons
from .devices import DEFAULT_IMPL, check_impl, parse_device, weights_and_compute
from .errors import DatasetError, EvaluationError, UsageError
from .files import atomic_save_npy, atomic_save_npz, atomic_write_text, record_outputs, refuse_foreign
from .images import save_png, to_uint8
from .methods import positive_int
from .models import set_impl
from .models.precision import autocast
from .restyle import average_image, iterate_naive, iterate_restyle

# everything invert writes into --out (and all that --overwrite replaces, once the new run has succeeded)
OUTPUTS = ("inference_results", "inference_coupled", "latents.npy", "latents.npz", "errors.csv", "avg_image.png")
STAGING = ".invert-new-"  # a run writes into --out/<STAGING><pid>-<hex>/ and moves its outputs in at the end


def output_names(names: list[str]) -> dict:
    """input name -> output PNG path relative to a step folder, never shared by two inputs.

    ``a.jpg`` becomes ``a.png``; when two inputs would meet there (``a.jpg`` and ``a.png``),
    both keep their extension: ``a.jpg.png``, ``a.png.png``.
    """
    plain = {n: str(PurePosixPath(n).with_suffix(".png")) for n in names}
    counts = {}
    for target in plain.values():
        counts[target] = counts.get(target, 0) + 1
    return {n: (t if counts[t] == 1 else n + ".png") for n, t in plain.items()}


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


def _folder(images: Path, input_hw, strict) -> ImageFolder:
    if images.is_file():
        if images.suffix.lower() not in IMAGE_EXTENSIONS:
            raise UsageError(f"--images {images} is not an image file ({', '.join(IMAGE_EXTENSIONS)}) or a folder")
        return ImageFolder(images.parent, input_hw=input_hw, strict=strict,
                           select=lambda names: [n for n in names if n == images.name])
    return ImageFolder(images, input_hw=input_hw, strict=strict)


def invert_folder(checkpoint, images, out, steps=5, coupled=False, full_size=False, device="cpu",
                  dtype="float32", impl=DEFAULT_IMPL, batch_size=4, strict=False, overwrite=False, progress=True, log=print) -> Path:
    """Per-step PNGs in out/inference_results/<step>/, latents.npy (official dict layout, keyed by the image
    path relative to --images), latents.npz, optional input|steps strips in out/inference_coupled/, and
    errors.csv listing every skipped file with its reason."""
    steps = positive_int(steps, "--steps")
    batch_size = positive_int(batch_size, "--batch-size")
    (dt, compute), dev = weights_and_compute(dtype), parse_device(device)
    out, images = Path(out), Path(images)
    if not images.exists():
        raise UsageError(f"--images {images}: no such file or folder")
    net = set_impl(load_network(checkpoint, device=dev, dtype=dt), check_impl(impl))
    folder = _folder(images, net.geometry.input_hw, strict)
    had_outputs = _check_out(out, overwrite)
    created = not out.exists()
    stage, swapped = _stage(out), False
    try:
        names_all, errors = _invert_into(stage, net, folder, steps, coupled, full_size, dev, dt, compute,
                                         batch_size, progress)
        if errors:
            _write_errors(stage / "errors.csv", errors)
        swapped = bool(names_all) or not had_outputs  # a failed run keeps an earlier run's outputs as they were
        if swapped:
            _swap_in(stage, out, OUTPUTS)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created and not swapped and not any(out.iterdir()):
            out.rmdir()
    if errors and swapped:
        log(f"skipped {len(errors)} of {len(folder)} input file(s) that could not be read; each is listed with "
            f"its reason in {out / 'errors.csv'}")
    if not names_all:
        where = f"see {out / 'errors.csv'}" if swapped else \
            f"{count_reasons(s for _, s in errors)}; the earlier outputs in {out} are kept as they were"
        raise DatasetError(f"no image in {images} could be read ({len(errors)} file(s)); {where}")
    return out


def _invert_into(stage: Path, net, folder, steps, coupled, full_size, dev, dt, compute, batch_size,
                 progress) -> tuple[list, list]:
    """Every readable image of ``folder`` inverted, its outputs written into ``stage``; returns (the names
    inverted, (name, reason) of every file skipped)."""
    targets = output_names(folder.names)
    if net.is_restyle:
        save_png(to_uint8(average_image(net))[0], stage / "avg_image.png")
    official, names_all, latents_all, errors = {}, [], [], []
    n_batches = (len(folder) + batch_size - 1) // batch_size
    for indices, x, records in tqdm(folder.batches(batch_size), total=n_batches, desc="invert", disable=not progress):
        errors += [(r.name, r.status) for r in records if r.status != "ok"]
        if x is None:
            continue
        x = x.to(dev, dt)
        with torch.no_grad(), autocast(dev, compute or dt):
            iterate = iterate_restyle if net.is_restyle else iterate_naive
            result = list(iterate(net, x, steps, resize_outputs=not full_size))
        latents = torch.stack([s.latent.detach().float() for s in result])  # [S, B, n_styles, D]
        if not torch.isfinite(latents).all():
            bad = [folder.names[i] for j, i in enumerate(indices) if not torch.isfinite(latents[:, j]).all()]
            raise EvaluationError(f"{net.info.path}: non-finite latents (NaN or inf) for {', '.join(bad[:4])}"
                                  f"{' ...' if len(bad) > 4 else ''}; nothing was written. Check the checkpoint "
                                  "(`restyle-lab info`) and --dtype")
        pics = [to_uint8(s.image) for s in result]
        for j, i in enumerate(indices):
            name = folder.names[i]
            for s, pic in enumerate(pics):
                save_png(pic[j], stage / "inference_results" / str(s) / targets[name])
            if coupled:
                h, w = pics[0].shape[1:3]
                source = Image.fromarray(to_uint8(x[j])[0]).resize((w, h), Image.Resampling.BILINEAR)
                strip = np.concatenate([np.asarray(source)] + [p[j] for p in pics], axis=1)
                save_png(strip, stage / "inference_coupled" / targets[name])
            lat = [s.latent[j].detach().cpu().float().numpy() for s in result]
            official[name] = lat
            names_all.append(name)
            latents_all.append(np.stack(lat))
    if names_all:
        atomic_save_npy(stage / "latents.npy", official)
        atomic_save_npz(stage / "latents.npz", names=np.array(names_all), latents=np.stack(latents_all))
    return names_all, errors


def _write_errors(path: Path, errors) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["image", "status"])
    writer.writerows(errors)
    atomic_write_text(path, buf.getvalue())
