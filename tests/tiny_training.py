"""Tiny encoder training configs: the real encoder classes at reduced widths against the tiny generator
(tests/tiny.py), every training feature switched on. Their numbers are meaningless as results."""

from __future__ import annotations

from restyle_lab.facts.configs import TINY
from restyle_lab.mini.render import render_batch
from restyle_lab.training.config import EncoderTrainConfig

ENCODERS = {"restyle_psp": "tiny-restyle-psp", "restyle_e4e": "tiny-restyle-e4e", "psp": "tiny-psp",
            "e4e": "tiny-e4e"}


def tiny_config(family: str, generator, **kw) -> EncoderTrainConfig:
    e4e = family.endswith("e4e")
    values = dict(family=family, encoder=TINY[ENCODERS[family]], generator=str(generator), domain="mini",
                  dataset_type="mini_encode", backbone_init="random", batch_size=2, test_batch_size=2,
                  n_iters_per_batch=3 if family.startswith("restyle") else 1, max_steps=4, optim_name="ranger",
                  learning_rate=1e-3, lpips_lambda=0.0, l2_lambda=1.0, w_norm_lambda=0.01, save_interval=1,
                  image_interval=2, board_interval=1, val_interval=None)
    if e4e:
        values.update(progressive_start=1, progressive_step_every=1, delta_norm_lambda=2e-4,
                      w_discriminator_lambda=0.1, use_w_pool=True, w_pool_size=3, d_reg_every=2)
    values.update(kw)
    return EncoderTrainConfig(**values)


def tiny_images(n: int = 16):
    """uint8 [n, 64, 64, 3] mini renders of the train split."""
    return render_batch("train", range(n), 64, "photo")
