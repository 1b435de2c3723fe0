"""``restyle-lab train`` on a real domain's preset: a checkpoint written by training has the official key
layout (../shared/reference/manifests) and ``invert`` runs it; a missing pretrained file is a one-line error
and nothing is written; ``--dry-run`` times iterations and writes no run. Random weights only."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from restyle_lab.cli import main
from restyle_lab.facts.configs import GeneratorConfig
from restyle_lab.models import Generator
from restyle_lab.models.checkpoints import load_network, save_generator


def _images(folder, n: int, size: int = 256):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _generator_256(path):
    torch.manual_seed(0)
    gen = Generator(GeneratorConfig(size=256))
    save_generator(gen, path, w_avg=gen.style(torch.randn(64, 512)).mean(0))
    return path


def _manifest(reference, name):
    tensors = json.loads((reference / "manifests" / f"{name}.json").read_text())["tensors"]
    return [(k, tuple(shape)) for k, shape, _ in tensors]


def test_church_preset_trains_an_official_layout_checkpoint_that_inverts(tmp_path, reference, capsys):
    """restyle-psp-church (ResNet34, 256 px generator), one step at batch 1, the pretrained files switched
    off: the checkpoint's encoder.* / decoder.* keys and shapes are the official ones in their order, the
    options are recorded under their official names, and invert reads it."""
    data = _images(tmp_path / "data", 2)
    gen = _generator_256(tmp_path / "stylegan2-church-config-f.pt")
    code = main(["train", "--preset", "restyle-psp-church", "--generator", str(gen), "--data", str(data),
                 "--workdir", str(tmp_path / "work"), "--iters", "1", "--batch_size", "1", "--n_iters_per_batch", "1",
                 "--lpips_lambda", "0", "--moco-lambda", "0", "--backbone-init", "random"])
    assert code == 0, capsys.readouterr().err
    path = tmp_path / "work" / "restyle-psp-church" / "checkpoints" / "last_model.pt"
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    keys = [(k, tuple(v.shape)) for k, v in ckpt["state_dict"].items()]
    expected = [(f"encoder.{k}", s) for k, s in _manifest(reference, "restyle_psp_resnet34_in6_s14")] + \
               [(f"decoder.{k}", s) for k, s in _manifest(reference, "stylegan2_generator_256")]
    assert keys == expected
    opts = ckpt["opts"]
    assert opts["encoder_type"] == "ResNetBackboneEncoder" and opts["output_size"] == 256
    assert opts["dataset_type"] == "church_encode" and opts["lpips_lambda"] == 0 and opts["moco_lambda"] == 0
    assert opts["id_lambda"] == 0 and opts["backbone_init"] == "random" and ckpt["latent_avg"].shape == (14, 512)
    assert load_network(path).encoder.config.official_encoder_type == "ResNetBackboneEncoder"
    assert main(["invert", "--checkpoint", str(path), "--images", str(data), "--out", str(tmp_path / "inv"),
                 "--steps", "2", "--batch-size", "2"]) == 0
    assert len(list((tmp_path / "inv" / "inference_results" / "1").glob("*.png"))) == 2


def test_missing_weight_file_is_one_line_and_nothing_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    data = _images(tmp_path / "data", 1, size=64)
    from tiny import write_tiny_checkpoints

    gen = write_tiny_checkpoints(tmp_path / "ckpt")["generator"]
    work = tmp_path / "work"
    base = ["train", "--preset", "restyle-psp-faces", "--generator", str(gen), "--data", str(data), "--workdir",
            str(work), "--weights", str(tmp_path / "weights")]
    assert main(base) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "alexnet-owt-7be5be79.pth" in err and "--lpips_lambda 0" in err
    assert main(base + ["--lpips_lambda", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "model_ir_se50.pth" in err and "--id_lambda 0" in err and len(err.splitlines()) == 1
    assert main(base + ["--lpips_lambda", "0", "--id_lambda", "0"]) == 2  # the IR-SE50 backbone still needs it
    assert "--backbone-init random" in capsys.readouterr().err
    assert not work.exists()


def test_dry_run_times_iterations_and_writes_no_run(tmp_path, capsys):
    assert main(["train", "--preset", "mini-restyle-psp", "--smoke", "--dry-run", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "s per training iteration" in out and "estimated total for 4,200 steps" in out
    assert not (tmp_path / "mini-restyle-psp").exists() and not any(tmp_path.iterdir()), "not even a render cache"
