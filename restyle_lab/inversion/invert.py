"""``restyle-lab invert``: one checkpoint over a folder of images, saved like the official scripts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..checkpoints import load_network
from ..data import IMAGE_EXTENSIONS, ImageFolder, count_reasons, png_names, write_skipped
from ..devices import check_impl, parse_device, weights_and_compute
from ..errors import DatasetError, UsageError
from ..faces.align import FaceAligner, size_for
from ..files import atomic_save_npy, atomic_save_npz
from ..images import save_png, to_uint8
from ..methods import positive_int
from ..models import set_impl
from ..notebook_params import DEFAULTS
from .inverters import inverter_for

# everything invert writes into --out (and all that --overwrite removes)
OUTPUTS = ("inference_results", "inference_coupled", "latents.npy", "latents.npz", "errors.csv", "avg_image.png",
           "aligned", "alignment.csv")


output_names = png_names  # input name -> output PNG path relative to a step folder


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder (created if missing)")
    if out.is_dir() and any(out.iterdir()):
        ours = [p.name for p in out.iterdir() if p.name in OUTPUTS]
        if not overwrite:
            raise UsageError(f"--out {out} already holds files ({', '.join(sorted(p.name for p in out.iterdir())[:4])}"
                             "...); choose a new folder, or add --overwrite to replace the outputs of an earlier "
                             "invert there")
        for name in ours:
            target = out / name
            shutil.rmtree(target) if target.is_dir() else target.unlink()
    out.mkdir(parents=True, exist_ok=True)


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
    """Per-step PNGs in out/inference_results/<step>/, latents.npy (official dict layout, keyed by the image
    path relative to --images), latents.npz, optional input|steps strips in out/inference_coupled/, and
    errors.csv listing every skipped file with its reason. ``align``: each photo is replaced by the FFHQ
    crop of its largest face first (out/aligned/, out/alignment.csv; photos without a face skipped)."""
    steps = positive_int(steps, "--steps")
    batch_size = positive_int(batch_size, "--batch-size")
    (dt, compute), dev = weights_and_compute(dtype), parse_device(device)
    out, images = Path(out), Path(images)
    if not images.exists():
        raise UsageError(f"--images {images}: no such file or folder")
    net = set_impl(load_network(checkpoint, device=dev, dtype=dt), check_impl(impl))
    # the evaluation's inverters and traces, untimed (no warm-up pass)
    inverter = inverter_for(net, steps, dtype=compute, resize=not full_size, warmup=False)
    aligner = FaceAligner(size_for(net.geometry.input_hw), dev) if align else None
    folder = _folder(images, net.geometry.input_hw, strict, aligner)
    _prepare_out(out, overwrite)
    targets = output_names(folder.names)
    if net.is_restyle:  # the official script's output beside the steps
        save_png(to_uint8(inverter.avg)[0], out / "avg_image.png")
    official, names_all, latents_all, errors = {}, [], [], []
    n_batches = (len(folder) + batch_size - 1) // batch_size
    for indices, x, records in tqdm(folder.batches(batch_size), total=n_batches, desc="invert", disable=not progress):
        errors += [(r.name, r.status) for r in records if r.status != "ok"]
        if x is None:
            continue
        trace = inverter.invert(x)
        pics = [to_uint8(s.image) for s in trace.steps]
        for j, i in enumerate(indices):
            name = folder.names[i]
            for s, pic in enumerate(pics):
                save_png(pic[j], out / "inference_results" / str(s) / targets[name])
            if coupled:
                h, w = pics[0].shape[1:3]
                source = Image.fromarray(to_uint8(x[j])[0]).resize((w, h), Image.Resampling.BILINEAR)
                strip = np.concatenate([np.asarray(source)] + [p[j] for p in pics], axis=1)
                save_png(strip, out / "inference_coupled" / targets[name])
            lat = [s.latent[j].numpy() for s in trace.steps]
            official[name] = lat
            names_all.append(name)
            latents_all.append(np.stack(lat))
    if aligner is not None:
        aligner.write_record(out, folder.names)
        log(f"aligned {len(aligner.rows)} face(s) ({out / 'alignment.csv'}, crops in {out / 'aligned'})")
    if errors:
        write_skipped(out / "errors.csv", errors)
        log(f"skipped {len(errors)} of {len(folder)} input file(s) ({count_reasons(s for _, s in errors)}); each is "
            f"listed with its reason in {out / 'errors.csv'}")
    if not names_all:
        raise DatasetError(f"no image in {images} could be read ({len(errors)} file(s)); see {out / 'errors.csv'}")
    atomic_save_npy(out / "latents.npy", official)
    atomic_save_npz(out / "latents.npz", names=np.array(names_all), latents=np.stack(latents_all))
    return out
