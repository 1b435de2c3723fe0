"""``restyle-lab invert``: one checkpoint over a folder of images, saved like the official scripts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .checkpoints import load_network
from .data import ImageFolder
from .images import to_uint8
from .restyle import average_image, iterate_naive, iterate_restyle


def invert_folder(checkpoint, images, out, steps=5, coupled=False, full_size=False, device="cpu",
                  dtype="float32", batch_size=4, strict=False, progress=True) -> Path:
    """Per-step PNGs in out/inference_results/<step>/, latents.npy (official dict layout), latents.npz,
    optional input|steps strips in out/inference_coupled/, and errors.csv for skipped files."""
    from PIL import Image
    from tqdm.auto import tqdm

    dt = {"float32": torch.float32, "float64": torch.float64}[dtype]
    net = load_network(checkpoint, device=device, dtype=dt)
    images = Path(images)
    if images.is_file():
        folder = ImageFolder(images.parent, input_hw=net.geometry.input_hw, strict=strict,
                             select=lambda names: [n for n in names if n == images.name])
    else:
        folder = ImageFolder(images, input_hw=net.geometry.input_hw, strict=strict)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if net.is_restyle:
        Image.fromarray(to_uint8(average_image(net))[0]).save(out / "avg_image.png")
    official, names_all, latents_all, errors = {}, [], [], []
    batches = folder.batches(batch_size)
    n_batches = (len(folder) + batch_size - 1) // batch_size
    for indices, x, records in tqdm(batches, total=n_batches, desc="invert", disable=not progress):
        errors += [(r.name, r.status) for r in records if r.status != "ok"]
        if x is None:
            continue
        x = x.to(device, dt)
        with torch.no_grad():
            iterate = iterate_restyle if net.is_restyle else iterate_naive
            result = list(iterate(net, x, steps, resize_outputs=not full_size))
        pics = [to_uint8(s.image) for s in result]
        for j, i in enumerate(indices):
            name = folder.names[i]
            for s, pic in enumerate(pics):
                path = out / "inference_results" / str(s) / name
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pic[j]).save(path.with_suffix(".png"))
            if coupled:
                h, w = pics[0].shape[1:3]
                source = Image.fromarray(to_uint8(x[j])[0]).resize((w, h), Image.Resampling.BILINEAR)
                strip = np.concatenate([np.asarray(source)] + [p[j] for p in pics], axis=1)
                path = (out / "inference_coupled" / name).with_suffix(".png")
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(strip).save(path)
            lat = [s.latent[j].detach().cpu().float().numpy() for s in result]
            official[Path(name).name] = lat
            names_all.append(name)
            latents_all.append(np.stack(lat))
    if not names_all:
        raise SystemExit(f"error: no image in {images} could be read; see {out / 'errors.csv'}")
    np.save(out / "latents.npy", official, allow_pickle=True)
    np.savez(out / "latents.npz", names=np.array(names_all), latents=np.stack(latents_all))
    if errors:
        lines = ["image,status"] + [f"{n},{s!r}" for n, s in errors]
        (out / "errors.csv").write_text("\n".join(lines) + "\n")
        print(f"skipped {len(errors)} unreadable file(s); see {out / 'errors.csv'}")
    return out
