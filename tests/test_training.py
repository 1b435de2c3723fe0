"""The encoder trainer on the real encoder classes at reduced widths: the loop and what it writes, exact
resumption after a kill, DDP on two gloo ranks against one rank accumulating, the BatchNorm-frozen
tail, paired toon targets. Random weights: mechanics only, never a metric."""

from __future__ import annotations

import csv
import dataclasses
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import write_tiny_checkpoints
from tiny_training import tiny_config, tiny_images

from restyle_lab.mini.dataset import training_images, write_test_set
from restyle_lab.mini.train import encoder_images
from restyle_lab.models.checkpoints import load_network
from restyle_lab.training.config import learning_rate
from restyle_lab.training.data import ArraySource, FolderSource
from restyle_lab.training.encoder import build_net, train_encoder
from restyle_lab.training.validate import Validator

HERE = Path(__file__).resolve().parent
quiet = lambda *a, **k: None  # noqa: E731


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    return write_tiny_checkpoints(tmp_path_factory.mktemp("ckpt"))["generator"]


def _encoder_weights(state_path) -> dict:
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    return {k: v for k, v in state["encoder"].items() if v.is_floating_point()}


def test_e4e_run_writes_its_records_and_official_checkpoints(tmp_path, generator):
    """ReStyle-e4e with every term on (Ranger, w-norm, delta, latent discriminator with pools and R1,
    progressive stages), validated with the evaluation's metrics: losses.csv, TensorBoard events, sample
    strips, best and last checkpoints in the official layout that load back."""
    cfg = tiny_config("restyle_e4e", generator, val_interval=2)
    test = FolderSource(write_test_set(tmp_path / "test", n=4), (64, 64))
    validator = Validator(test, cfg.n_iters_per_batch, 2, "cpu", ["mse_pm1", "psnr_pm1"], log=quiet)
    state = train_encoder(cfg, tmp_path / "run", ArraySource(tiny_images(8)), validator=validator, val_every=2,
                          log=quiet)
    run = tmp_path / "run"
    rows = list(csv.DictReader((run / "losses.csv").open()))
    train_names = {r["name"] for r in rows if r["split"] == "train"}
    assert {"loss", "loss_l2", "loss_w_norm", "total_delta_loss", "encoder_discriminator_loss",
            "discriminator_loss", "discriminator_r1_loss", "loss_l2_iter3"} <= train_names
    assert {"loss", "mse_pm1_step1", "mse_pm1_step3", "psnr_pm1_step3"} <= {r["name"] for r in rows
                                                                             if r["split"] == "test"}
    assert list((run / "logs").glob("events.out.tfevents.*")) and list((run / "samples").glob("step_*.png"))
    for name in ("best_model.pt", "last_model.pt"):
        ckpt = torch.load(run / "checkpoints" / name, map_location="cpu", weights_only=True)
        assert {"state_dict", "opts", "latent_avg", "discriminator_state_dict"} <= set(ckpt)
        assert ckpt["opts"]["w_discriminator_lambda"] == 0.1 and ckpt["opts"]["progressive_steps"][:3] == [0, 1, 2]
        assert ckpt["training"]["ops"]["encoder"].startswith("reference")
        assert load_network(run / "checkpoints" / name).family == "restyle_e4e"
    saved = torch.load(state, map_location="cpu", weights_only=True)
    assert saved["step"] == 4 and saved["ranks"][0]["real_pool"].shape[0] > 0 and "rng" in saved["ranks"][0]


def _run_worker(out_dir, generator, family, steps, batch, accumulate, nproc: int = 1, wait=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    script = [str(HERE / "train_worker.py"), str(out_dir), str(generator), family, str(steps), str(batch),
              str(accumulate)]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port",
               str(29500 + os.getpid() % 1000)] + script
    else:
        cmd = [sys.executable] + script
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if wait:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    return proc


def test_a_killed_run_resumes_to_the_same_weights(tmp_path, generator):
    """SIGKILL at an arbitrary moment after the first saved state, then the same command again: the
    weights equal an uninterrupted run's (model, Ranger + Lookahead, discriminator, pools, random states,
    data position all restored)."""
    steps = 8
    proc = _run_worker(tmp_path / "killed", generator, "restyle_e4e", steps, 2, 1, wait=False)
    deadline = time.time() + 300
    while not (tmp_path / "killed" / "state.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(float(np.random.default_rng().uniform(0.0, 0.5)))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(tmp_path / "killed" / "state.pt", weights_only=True)["step"]
    assert proc.returncode == -signal.SIGKILL and killed_at < steps, "the run ended before it could be killed"
    _run_worker(tmp_path / "killed", generator, "restyle_e4e", steps, 2, 1)
    _run_worker(tmp_path / "whole", generator, "restyle_e4e", steps, 2, 1)
    resumed = _encoder_weights(tmp_path / "killed" / "state.pt")
    whole = _encoder_weights(tmp_path / "whole" / "state.pt")
    assert all(torch.equal(resumed[k], whole[k]) for k in whole)
    a = torch.load(tmp_path / "killed" / "state.pt", weights_only=True)
    b = torch.load(tmp_path / "whole" / "state.pt", weights_only=True)
    assert all(torch.equal(a["discriminator"][k], b["discriminator"][k]) for k in b["discriminator"])
    assert torch.equal(a["ranks"][0]["real_pool"], b["ranks"][0]["real_pool"])


def test_two_gloo_ranks_equal_one_rank_accumulating_two_batches(tmp_path, generator):
    """Batch 2 on each of 2 ranks (DDP, no_sync for all but the last backward pass) == batch 2 x 2
    micro-batches on one rank: same images, same randomness, BatchNorm over 2 images either way."""
    _run_worker(tmp_path / "ddp", generator, "restyle_psp", 3, 2, 1, nproc=2)
    _run_worker(tmp_path / "acc", generator, "restyle_psp", 3, 2, 2)
    ddp, acc = _encoder_weights(tmp_path / "ddp" / "state.pt"), _encoder_weights(tmp_path / "acc" / "state.pt")
    trained = [k for k in acc if not k.endswith(("running_mean", "running_var"))]
    for k in trained:
        torch.testing.assert_close(ddp[k], acc[k], rtol=1e-4, atol=1e-5)
    opts = torch.load(tmp_path / "ddp" / "checkpoints" / "last_model.pt", weights_only=True)["opts"]
    assert opts["effective_batch_size"] == 4 and opts["world_size"] == 2
    torch.manual_seed(0)  # the trainer's initialisation: its seed
    start = build_net(tiny_config("restyle_psp", generator)).encoder.state_dict()
    assert sum(not torch.allclose(start[k], acc[k]) for k in trained) > len(trained) // 2, "training moved the weights"


def test_frozen_batchnorm_tail_keeps_running_statistics(tmp_path, generator):
    cfg = tiny_config("restyle_psp", generator, max_steps=2, freeze_bn_steps=1, optim_name="adam")
    images = ArraySource(tiny_images(8))
    after_two = torch.load(train_encoder(cfg, tmp_path / "run", images, log=quiet), weights_only=True)
    after_one = torch.load(tmp_path / "run" / "state.prev.pt", weights_only=True)  # the state before: step 1
    stats = lambda s: {k: v for k, v in s["encoder"].items() if k.endswith(("running_mean", "running_var"))}  # noqa
    fresh = {k: (torch.zeros_like(v) if k.endswith("mean") else torch.ones_like(v))
             for k, v in stats(after_one).items()}
    assert any(not torch.equal(v, fresh[k]) for k, v in stats(after_one).items())
    assert after_one["step"] == 1 and after_two["step"] == 2
    assert all(torch.equal(stats(after_one)[k], stats(after_two)[k]) for k in stats(after_one))
    assert any(not torch.equal(v, after_one["encoder"][k]) for k, v in after_two["encoder"].items()
               if v.is_floating_point() and "running" not in k)


def test_cosine_ends_where_the_frozen_tail_begins(generator):
    cfg = tiny_config("restyle_psp", generator, max_steps=100, freeze_bn_steps=20, learning_rate=1.0,
                      lr_schedule="cosine", lr_final_fraction=0.1)
    assert learning_rate(cfg, 0) == 1.0
    assert abs(learning_rate(cfg, 80) - 0.1) < 1e-12 and abs(learning_rate(cfg, 99) - 0.1) < 1e-12
    assert learning_rate(cfg, 40) > 0.1
    assert learning_rate(dataclasses.replace(cfg, lr_schedule="constant"), 99) == 1.0


def test_paired_toon_targets_are_the_same_faces(tmp_path, generator):
    """target_style="toon" trains against the toon render of each input's own face."""
    from restyle_lab.mini.render import render_batch

    cfg = tiny_config("restyle_psp", generator, max_steps=1, n_train_images=4, target_style="toon", batch_size=2)
    photo, toon = encoder_images(cfg, tmp_path / "cache", log=quiet)
    train_encoder(cfg, tmp_path / "run", ArraySource(photo, toon), log=quiet)
    assert np.array_equal(toon, render_batch("train", range(4), 64, "toon"))
    assert np.array_equal(photo, render_batch("train", range(4), 64, "photo"))
    assert not np.array_equal(photo, toon)
    assert np.array_equal(training_images("photo", 4, 64, tmp_path / "cache", log=quiet), photo)


def test_bf16_autocast_trains(tmp_path, generator):
    cfg = tiny_config("restyle_psp", generator, max_steps=1, n_iters_per_batch=2)
    state = train_encoder(cfg, tmp_path / "run", ArraySource(tiny_images(4)), dtype="bf16", log=quiet)
    saved = torch.load(state, weights_only=True)
    assert saved["dtype"] == "bf16" and all(torch.isfinite(v).all() for v in saved["encoder"].values()
                                              if v.is_floating_point())


def test_ddp_reduces_once_per_step_not_once_per_iteration(tmp_path, generator):
    """The first n_iters_per_batch - 1 backward passes run under no_sync: each gradient bucket is reduced once."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from restyle_lab.training.encoder import EncoderTrainer

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'group'}", rank=0, world_size=1)
    try:
        trainer = EncoderTrainer(tiny_config("restyle_psp", generator, n_iters_per_batch=3), ArraySource(tiny_images(4)),
                                 log=quiet)
        trainer.encoder = DistributedDataParallel(trainer.net.encoder)
        reduced = []

        def hook(state, bucket):
            reduced.append(bucket.index())
            future = torch.futures.Future()
            future.set_result(bucket.buffer())
            return future

        trainer.encoder.register_comm_hook(None, hook)
        trainer.step(0)
        assert reduced and len(reduced) == len(set(reduced))
    finally:
        dist.destroy_process_group()


# ------------------------------------------------------------------ states checked before a resume (issue 27)

def _files(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "locks" not in p.parts}


def _nan_bytes(path: Path) -> None:
    """64 bytes in the middle of the largest tensor set to 0xff, a float32 NaN: what its zip CRC catches and a
    plain torch.load does not (a weight turns NaN)."""
    with zipfile.ZipFile(path) as zf:
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.compress_size)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = (int.from_bytes(raw[info.header_offset + k: info.header_offset + k + 2], "little")
                           for k in (26, 28))
    start = info.header_offset + 30 + name_len + extra_len + info.compress_size // 2
    raw[start - start % 4: start - start % 4 + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))


def test_a_damaged_state_is_refused_and_the_one_before_resumes_exactly(tmp_path, generator):
    """A state with 64 bytes set to NaN (its CRC fails) is refused, changing nothing, with the mv that resumes from
    state.prev.pt; done, the run ends with the weights the undamaged state held: no NaN reaches them."""
    from restyle_lab.facts.errors import CheckpointError

    cfg = tiny_config("psp", generator, max_steps=2, batch_size=2, image_interval=100)  # a state every step
    images = ArraySource(tiny_images(8))
    run = tmp_path / "run"
    train_encoder(cfg, run, images, log=quiet)
    whole = _encoder_weights(run / "state.pt")
    _nan_bytes(run / "state.pt")
    unchecked = torch.load(run / "state.pt", weights_only=True)
    assert any(not torch.isfinite(v).all() for v in unchecked["encoder"].values() if v.is_floating_point()), \
        "the damage must be one that gives NaN weights when the file is not checked"
    before = _files(run)
    with pytest.raises(CheckpointError, match="fails the zip CRC check") as refused:
        train_encoder(cfg, run, images, log=quiet)
    assert f"`mv {run / 'state.prev.pt'} {run / 'state.pt'}`" in str(refused.value)
    assert "\n" not in str(refused.value) and _files(run) == before
    os.replace(run / "state.prev.pt", run / "state.pt")
    lines = []
    train_encoder(cfg, run, images, log=lines.append)
    assert any("resumed" in line and "at step 1" in line for line in lines)
    resumed = _encoder_weights(run / "state.pt")
    assert all(torch.isfinite(v).all() for v in resumed.values())
    assert all(torch.equal(resumed[k], whole[k]) for k in whole)


def test_the_step_count_may_change_on_a_resume_only_where_the_schedule_does_not_depend_on_it(generator):
    from restyle_lab.mini.attributes import AttributeTrainConfig
    from restyle_lab.training.gan import GanConfig

    assert "max_steps" in tiny_config("psp", generator).resume_free()  # a constant learning rate
    assert "max_steps" not in tiny_config("psp", generator, lr_schedule="cosine").resume_free()
    assert "max_steps" not in tiny_config("psp", generator, freeze_bn_steps=1).resume_free()  # counted from the end
    assert "iters" in GanConfig().resume_free() and "iters" not in AttributeTrainConfig().resume_free()
    assert "batch_size" not in tiny_config("psp", generator).resume_free() and "batch" not in GanConfig().resume_free()


def test_a_gan_resumes_with_another_step_count_exactly(tmp_path):
    """A GAN's learning rate is constant: a resume may run it longer (or shorter), to the same weights as a run
    given that step count from the start; another batch is refused before anything is written."""
    from restyle_lab.facts.configs import GeneratorConfig
    from restyle_lab.facts.errors import UsageError
    from restyle_lab.training.gan import GanConfig, train_gan

    cfg = GanConfig(generator=GeneratorConfig(size=16, style_dim=8, n_mlp=1, channel_base=64, channel_max=8),
                    d_channel_base=64, d_channel_max=8, batch=2, iters=1, n_train_images=8, checkpoint_every=1,
                    sample_every=100)
    images = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    torch.manual_seed(0)  # the GAN trainer's initial weights come from the global random state
    train_gan(cfg, tmp_path / "run", images, log=quiet)
    before = _files(tmp_path / "run")
    with pytest.raises(UsageError, match=r"batch: 2 now 4\).*a resume may change only checkpoint_every, iters"):
        train_gan(dataclasses.replace(cfg, batch=4, iters=2), tmp_path / "run", images, log=quiet)
    assert _files(tmp_path / "run") == before
    lines = []
    train_gan(dataclasses.replace(cfg, iters=2, sample_every=2), tmp_path / "run", images, log=lines.append)
    assert any("iters: 1 now 2" in line and "sample_every: 100 now 2" in line for line in lines)
    torch.manual_seed(0)
    train_gan(dataclasses.replace(cfg, iters=2), tmp_path / "whole", images, log=quiet)
    a, b = (torch.load(p / "state.pt", weights_only=True) for p in (tmp_path / "run", tmp_path / "whole"))
    assert a["step"] == b["step"] == 2
    for net in ("G", "D", "G_ema"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in b[net]), net


# ------------------------------------------------------------------ the loop, single-pass e4e, float64 (issue 29)

def test_each_iteration_back_propagates_through_itself_only(generator):
    """The step runs the inversion's ReStyle loop with the official coach's gradients: each iteration's loss
    reaches the encoder through that iteration alone (the previous output and codes fed as detached clones)."""
    import torch.nn.functional as F

    from restyle_lab.training.encoder import EncoderTrainer

    cfg = tiny_config("restyle_psp", generator, n_iters_per_batch=3, w_norm_lambda=0.0, randomize_noise=False)
    trainer = EncoderTrainer(cfg, ArraySource(tiny_images(4)), log=quiet)
    net, x = trainer.net, trainer.fixed[:2]
    trainer._iterations(0, x, x, last_micro=True)
    got = {k: p.grad.clone() for k, p in net.encoder.named_parameters() if p.grad is not None}
    net.encoder.zero_grad(set_to_none=True)
    y_hat, latent = net(torch.cat([x, trainer.avg.expand(len(x), -1, -1, -1)], 1))
    F.mse_loss(y_hat, x).backward()
    for _ in range(2):
        fed, previous = y_hat.clone().detach().requires_grad_(True), latent.clone().detach().requires_grad_(True)
        y_hat, latent = net(torch.cat([x, net.to_input(fed)], 1), latent=previous)
        F.mse_loss(y_hat, x).backward()
    official = {k: p.grad for k, p in net.encoder.named_parameters() if p.grad is not None}
    assert got and set(got) == set(official)
    for k in official:
        torch.testing.assert_close(got[k], official[k], rtol=1e-5, atol=1e-7)


def test_single_pass_e4e_trains_with_its_latent_discriminator(tmp_path, generator):
    """The discriminator judges the codes of the encoder's first iteration: x alone for a single-pass e4e (it
    was given ReStyle's 6-channel [x, average image])."""
    cfg = tiny_config("e4e", generator, max_steps=1)
    train_encoder(cfg, tmp_path / "run", ArraySource(tiny_images(4)), log=quiet)
    names = {r["name"] for r in csv.DictReader((tmp_path / "run" / "losses.csv").open())}
    assert {"discriminator_loss", "encoder_discriminator_loss", "loss_l2"} <= names


def test_float64_trains_in_float64_throughout(tmp_path, generator):
    """--dtype float64: every network output, the loss and the optimiser's state are float64; the exported
    checkpoint holds the official float32 and inverts."""
    from restyle_lab.training.encoder import EncoderTrainer

    cfg = tiny_config("restyle_e4e", generator, n_iters_per_batch=2)
    trainer = EncoderTrainer(cfg, ArraySource(tiny_images(4)), dtype="float64", log=quiet)
    seen, totals = set(), []

    def outputs(module, inputs, output):
        stack = [output]
        while stack:
            item = stack.pop()
            if isinstance(item, (tuple, list)):
                stack.extend(item)
            elif torch.is_tensor(item) and item.is_floating_point():
                seen.add(item.dtype)

    for module in [*trainer.net.modules(), *trainer.gan.D.modules()]:
        module.register_forward_hook(outputs)
    loss = trainer.loss

    def spy(*args):
        total, parts = loss(*args)
        totals.append(total.dtype)
        return total, parts

    trainer.loss = spy
    record = trainer.step(0)
    assert seen == {torch.float64} and set(totals) == {torch.float64} and np.isfinite(record["loss"])
    assert all(p.dtype == torch.float64 for p in trainer.net.encoder.parameters())
    moments = [v for s in trainer.opt.state.values() for k, v in s.items() if k != "step"]  # torch counts in float32
    assert moments and all(v.dtype == torch.float64 for v in moments)
    trainer.export(tmp_path / "model.pt", 1)
    ckpt = torch.load(tmp_path / "model.pt", weights_only=True)
    assert {v.dtype for v in ckpt["state_dict"].values() if v.is_floating_point()} == {torch.float32}
    net = load_network(tmp_path / "model.pt")
    with torch.no_grad():
        inputs = torch.cat([trainer.fixed.float(), trainer.avg.float().expand(4, -1, -1, -1)], 1)
        assert torch.isfinite(net(inputs)[0]).all()
