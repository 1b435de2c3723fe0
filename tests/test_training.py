"""Encoder training mechanics on tiny models: the BatchNorm-frozen tail and its learning-rate schedule."""

from __future__ import annotations

import numpy as np
import torch

from restyle_lab.configs import PRESETS
from restyle_lab.mini.dataset import training_images
from restyle_lab.mini.train import encoder_images
from restyle_lab.training.encoder import EncoderTrainConfig, learning_rate, train_encoder

from tiny import write_tiny_checkpoints


def _running_stats(state):
    return {k: v.clone() for k, v in state["encoder"].items() if k.endswith(("running_mean", "running_var"))}


def test_frozen_batchnorm_tail_keeps_running_statistics(tmp_path):
    paths = write_tiny_checkpoints(tmp_path / "ckpt")
    cfg = EncoderTrainConfig(family="restyle_psp", encoder=PRESETS["tiny-restyle-psp"], generator=str(paths["generator"]),
                             batch=2, iters=2, n_iters_per_batch=2, freeze_bn_steps=1, n_train_images=8,
                             checkpoint_every=1, sample_every=100)
    quiet = lambda *a: None  # noqa: E731
    images = training_images("photo", 8, 64, tmp_path / "cache", log=quiet)
    # step 1 unfrozen, then resume the same run for a frozen step 2
    first = train_encoder(EncoderTrainConfig(**{**cfg.__dict__, "iters": 1, "freeze_bn_steps": 0}), tmp_path / "run",
                          images, log=quiet, use_lpips=False)
    after_one = torch.load(first, weights_only=True)
    fresh = {k: (torch.zeros_like(v) if k.endswith("mean") else torch.ones_like(v))
             for k, v in _running_stats(after_one).items()}
    assert any(not torch.equal(v, fresh[k]) for k, v in _running_stats(after_one).items()), \
        "an unfrozen step should move the running statistics"
    after_two = torch.load(train_encoder(cfg, tmp_path / "run", images, log=quiet, use_lpips=False),
                           weights_only=True)
    assert after_two["step"] == 2
    stats_one, stats_two = _running_stats(after_one), _running_stats(after_two)
    assert stats_one and all(torch.equal(stats_one[k], stats_two[k]) for k in stats_one), \
        "the frozen step changed BatchNorm running statistics"
    weights_changed = [k for k, v in after_two["encoder"].items()
                       if v.is_floating_point() and not k.endswith(("running_mean", "running_var"))
                       and not torch.equal(v, after_one["encoder"][k])]
    assert weights_changed, "the frozen step did not train the weights"


def test_cosine_ends_where_the_frozen_tail_begins():
    cfg = EncoderTrainConfig(iters=100, freeze_bn_steps=20, lr=1.0, lr_final_fraction=0.1)
    assert learning_rate(cfg, 0) == 1.0
    assert abs(learning_rate(cfg, 80) - 0.1) < 1e-12 and abs(learning_rate(cfg, 99) - 0.1) < 1e-12
    assert learning_rate(cfg, 40) > 0.1


def test_paired_toon_targets_are_the_same_faces(tmp_path):
    """target_style="toon" trains against the toon render of each input's own face."""
    from restyle_lab.mini.render import render_batch

    paths = write_tiny_checkpoints(tmp_path / "ckpt")
    cfg = EncoderTrainConfig(family="restyle_psp", encoder=PRESETS["tiny-restyle-psp"], generator=str(paths["generator"]),
                             batch=2, iters=1, n_iters_per_batch=1, n_train_images=4, target_style="toon",
                             checkpoint_every=1, sample_every=100)
    photo, toon = encoder_images(cfg, tmp_path / "cache", log=lambda *a: None)
    train_encoder(cfg, tmp_path / "run", photo, toon, log=lambda *a: None, use_lpips=False)
    assert np.array_equal(toon, render_batch("train", range(4), 64, "toon"))
    assert np.array_equal(photo, render_batch("train", range(4), 64, "photo"))
    assert not np.array_equal(photo, toon)
