"""The training losses and the optimiser against their formulas written out by hand here, and the loaders
of the pretrained files against stand-in files in the official key layouts (random weights: the numbers
only check the arithmetic, they are never reported)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision

from restyle_lab.facts.configs import FAMILIES, IR_SE50, TINY, BackboneConfig
from restyle_lab.facts.domains import DOMAINS
from restyle_lab.facts.errors import UsageError
from restyle_lab.models.arcface import ArcFace
from restyle_lab.models.latent_discriminator import LatentCodesDiscriminator
from restyle_lab.training import criteria
from restyle_lab.training.config import (
    EncoderTrainConfig,
    loss_weight_options,
    progressive_stage,
    progressive_steps,
    trained_rows,
)
from restyle_lab.training.latent_gan import LatentPool
from restyle_lab.training.losses import (
    TERMS,
    EncoderLoss,
    locate_weights,
    loss_names,
    official_loss_options,
    preset_weights,
)
from restyle_lab.training.ranger import Ranger
from restyle_lab.training.weights import init_backbone, load_arcface, load_lpips_alex, load_moco

TINY_IRSE = BackboneConfig("ir_se", (1, 1, 1, 1), (8, 16, 16, 32), 8, 4)


def _official_ranger(params, grads_per_step, lr, alpha=0.5, k=6, b1=0.95, b2=0.999, eps=1e-5):
    """The official training/ranger.py update, written out per parameter (its own step count)."""
    out = [p.clone() for p in params]
    state = [None] * len(params)
    for grads in grads_per_step:
        for i, g in enumerate(grads):
            if g is None:
                continue
            g = g.clone()
            if g.dim() > 1:
                g = g - g.mean(dim=tuple(range(1, g.dim())), keepdim=True)
            if state[i] is None:
                state[i] = {"t": 0, "m": torch.zeros_like(g), "v": torch.zeros_like(g), "slow": out[i].clone()}
            s = state[i]
            s["t"] += 1
            t = s["t"]
            s["v"] = b2 * s["v"] + (1 - b2) * g * g
            s["m"] = b1 * s["m"] + (1 - b1) * g
            n_max = 2 / (1 - b2) - 1
            n_sma = n_max - 2 * t * b2 ** t / (1 - b2 ** t)
            if n_sma > 5:
                step = math.sqrt((1 - b2 ** t) * (n_sma - 4) / (n_max - 4) * (n_sma - 2) / n_sma * n_max
                                 / (n_max - 2)) / (1 - b1 ** t)
                out[i] = out[i] - step * lr * s["m"] / (s["v"].sqrt() + eps)
            else:
                out[i] = out[i] - lr / (1 - b1 ** t) * s["m"]
            if t % k == 0:
                s["slow"] = s["slow"] + alpha * (out[i] - s["slow"])
                out[i] = s["slow"].clone()
    return out


def test_ranger_is_the_official_update():
    """A conv weight, an fc weight, a bias, and a head that first gets gradients at step 4 (e4e's late
    offsets), over 14 steps: momentum-only steps, rectified ones and two Lookahead syncs."""
    g = torch.Generator().manual_seed(0)
    shapes = [(4, 3, 3, 3), (5, 7), (5,), (6, 2)]
    params = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    grads = [[torch.randn(s, generator=g, dtype=torch.float64) if (i != 3 or t >= 4) else None
              for i, s in enumerate(shapes)] for t in range(14)]
    mine = [torch.nn.Parameter(p.clone()) for p in params]
    opt = Ranger(mine, lr=0.01)
    for step_grads in grads:
        for p, gr in zip(mine, step_grads):
            p.grad = None if gr is None else gr.clone()
        opt.step()
    expected = _official_ranger(params, grads, lr=0.01)
    for p, e in zip(mine, expected):
        torch.testing.assert_close(p.detach(), e, rtol=1e-10, atol=1e-12)
    # the state round-trips (Lookahead's slow copies included)
    again = Ranger([torch.nn.Parameter(p.detach().clone()) for p in mine], lr=0.01)
    again.load_state_dict(opt.state_dict())
    assert all("slow_buffer" in s for s in again.state.values())


def test_pixel_and_latent_regularisers_by_hand():
    g = torch.Generator().manual_seed(1)
    y_hat, y = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    assert torch.isclose(criteria.l2_loss(y_hat, y), ((y_hat - y) ** 2).sum() / y.numel())
    latent, avg = torch.randn(3, 5, 4, generator=g), torch.randn(5, 4, generator=g)
    frob = [math.sqrt(float(((latent[b] - avg) ** 2).sum())) for b in range(3)]
    assert math.isclose(float(criteria.w_norm_loss(latent, avg)), sum(frob) / 3, rel_tol=1e-6)
    by_hand = sum(sum(math.sqrt(float(((latent[b, i] - latent[b, 0]) ** 2).sum())) for b in range(3)) / 3
                  for i in (1, 2))
    assert math.isclose(float(criteria.delta_loss(latent, stage=2)), by_hand, rel_tol=1e-6)


def test_progressive_schedule_is_the_official_one():
    cfg = EncoderTrainConfig(family="restyle_e4e", encoder=TINY["tiny-restyle-e4e"], progressive_start=20,
                             progressive_step_every=5)
    n = cfg.encoder.n_styles
    assert progressive_steps(cfg) == [0] + [20 + 5 * i for i in range(n - 1)]
    assert progressive_stage(cfg, 19) == 0 and progressive_stage(cfg, 20) == 1 and progressive_stage(cfg, 25) == 2
    assert trained_rows(cfg, 22) == [0, 1]
    assert progressive_stage(cfg, 20 + 5 * (n - 2)) is None and trained_rows(cfg, 10_000) == list(range(n))


def test_latent_discriminator_losses_and_r1_by_hand():
    torch.manual_seed(0)
    D = LatentCodesDiscriminator(8, n_mlp=1)  # one Linear: D(w) = a.w + b, so dD/dw = a
    a, b = D.mlp[0].weight[0].detach(), D.mlp[0].bias.detach()
    real = torch.randn(4, 8, requires_grad=True)
    fake = torch.randn(4, 8)
    r1 = criteria.r1_penalty(D(real), real)
    assert torch.isclose(r1, (a ** 2).sum())
    sp = lambda t: torch.log1p(torch.exp(t))  # noqa: E731
    expected = sp(-(real.detach() @ a + b)).mean() + sp(fake @ a + b).mean()
    assert torch.isclose(criteria.discriminator_loss(D(real.detach()), D(fake)), expected)
    latent = torch.randn(4, 3, 8)
    expected = (sp(-(latent[:, 0] @ a + b)).mean() + sp(-(latent[:, 2] @ a + b)).mean()) / 2
    assert torch.isclose(criteria.adversarial_loss(D, latent, [0, 2]), expected)
    assert [k for k in LatentCodesDiscriminator(512, 4).state_dict()] == \
        [f"mlp.{i}.{w}" for i in (0, 2, 4, 6) for w in ("weight", "bias")]


def test_latent_pool_fills_then_swaps_half_the_time():
    pool = LatentPool(2)
    first = pool.query(torch.arange(2.0)[:, None].repeat(1, 3))
    assert torch.equal(first, torch.tensor([[0.0] * 3, [1.0] * 3]))
    torch.manual_seed(0)
    codes = (torch.arange(200.0) + 10)[:, None].repeat(1, 3)
    out = pool.query(codes)
    swapped = (out[:, 0] != codes[:, 0]).sum()
    assert 60 < swapped < 140  # half of them, give or take
    assert pool.state().shape == (2, 3)
    rows = pool.query(torch.full((4, 5, 3), 9.0))  # [N, R, D]: one row of each
    assert rows.shape == (4, 3)
    assert LatentPool(0).query(torch.ones(2, 4, 3)).shape == (2, 4, 3)


def test_id_loss_is_the_official_formula_with_a_stand_in_arcface(tmp_path):
    torch.manual_seed(0)
    stand_in = ArcFace(TINY_IRSE).eval()
    torch.save(stand_in.state_dict(), tmp_path / "model_ir_se50.pth")
    arcface = load_arcface(tmp_path / "model_ir_se50.pth", backbone=TINY_IRSE)
    loss_fn = criteria.IdLoss(arcface)
    y_hat = (torch.rand(2, 3, 256, 256) * 2 - 1).requires_grad_(True)
    y = torch.rand(2, 3, 256, 256) * 2 - 1

    def feats(img):
        e = stand_in(F.adaptive_avg_pool2d(img[:, :, 35:223, 32:220], 112))
        return e / e.norm(dim=1, keepdim=True)

    loss, _ = loss_fn(y_hat, y, y)
    expected = (1 - (feats(y_hat) * feats(y)).sum(1)).mean()
    assert torch.isclose(loss, expected, atol=1e-6)
    loss.backward()
    assert y_hat.grad is not None and all(not p.requires_grad for p in arcface.parameters())
    # the real network: IR-SE50 with a 512 x 7 x 7 -> 512 output layer, keys as the official Backbone
    keys = ArcFace(IR_SE50).state_dict()
    assert keys["output_layer.3.weight"].shape == (512, 512 * 7 * 7) and "body.23.res_layer.5.fc2.weight" in keys


def test_moco_loss_is_the_official_formula_with_a_stand_in_resnet50(tmp_path):
    torch.manual_seed(0)
    net = torchvision.models.resnet50(weights=None).eval()
    sd = {f"module.encoder_q.{k}": v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    sd.update({"module.encoder_q.fc.0.weight": torch.zeros(2048, 2048),  # MoCo v2's MLP head, dropped
               "module.encoder_q.fc.2.weight": torch.zeros(128, 2048)})
    torch.save({"epoch": 800, "arch": "resnet50", "state_dict": sd}, tmp_path / "moco_v2_800ep_pretrain.pt")
    loss_fn = criteria.MocoLoss(load_moco(tmp_path / "moco_v2_800ep_pretrain.pt"))
    y_hat, y = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    net.fc = torch.nn.Identity()
    with torch.no_grad():
        f = lambda t: F.normalize(net(F.interpolate(t, size=224)), dim=1)  # noqa: E731
        expected = (1 - (f(y_hat) * f(y)).sum(1)).mean()
        loss, improvement = loss_fn(y_hat, y)  # no input images: no improvement logged (saves a pass)
    assert torch.isclose(loss, expected, atol=1e-5) and improvement is None


def test_lpips_loss_is_the_lpips_formula_with_a_stand_in_alexnet(tmp_path):
    torch.manual_seed(0)
    alex = torchvision.models.alexnet(weights=None).eval()
    torch.save(alex.state_dict(), tmp_path / "alexnet-owt-7be5be79.pth")
    model = load_lpips_alex(tmp_path / "alexnet-owt-7be5be79.pth")
    y_hat, y = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    shift = torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None]
    scale = torch.tensor([0.458, 0.448, 0.450])[None, :, None, None]

    def taps(img):
        x, out = (img - shift) / scale, []
        for i, layer in enumerate(alex.features[:12]):
            x = layer(x)
            if i in (1, 4, 7, 9, 11):
                out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    with torch.no_grad():
        lins = [lin.model[-1].weight for lin in model.lins]
        per_image = sum(F.conv2d((a - b) ** 2, w).mean((2, 3)) for a, b, w in zip(taps(y_hat), taps(y), lins))
        assert torch.isclose(criteria.lpips_loss(model, y_hat, y), per_image.mean(), atol=1e-5)


@pytest.mark.parametrize("kind", ["ir_se", "resnet"])
def test_backbone_starts_from_the_pretrained_file(tmp_path, kind):
    torch.manual_seed(0)
    from restyle_lab.models import StyleEncoder

    enc = StyleEncoder(TINY["tiny-restyle-psp" if kind == "ir_se" else "tiny-restyle-psp-resnet"])
    if kind == "ir_se":
        source = ArcFace(TINY_IRSE).state_dict()
        stem = "input_layer.0.weight"
    else:  # torchvision's layout: conv1, bn1, layer1..4 (one unit each in the tiny config)
        donor = StyleEncoder(TINY["tiny-restyle-psp-resnet"]).state_dict()
        source = {f"layer{int(k.split('.')[1]) + 1}.0.{k.split('.', 2)[2]}": v for k, v in donor.items()
                  if k.startswith("body.")}
        source.update({"conv1.weight": torch.randn(8, 3, 7, 7), "bn1.weight": torch.rand(8), "bn1.bias": torch.rand(8),
                       "bn1.running_mean": torch.rand(8), "bn1.running_var": torch.rand(8),
                       "bn1.num_batches_tracked": torch.tensor(5), "fc.weight": torch.zeros(10, 32)})
        stem = "conv1.weight"
    torch.save(source, tmp_path / "w.pth")
    keys = init_backbone(enc, tmp_path / "w.pth", seed=3)
    sd = enc.state_dict()
    assert torch.equal(sd[stem][:, :3], source[stem]) and sd[stem].shape[1] == 6
    assert torch.equal(sd[stem][:, 3:], torch.randn(sd[stem].shape, generator=torch.Generator().manual_seed(3))[:, 3:])
    body = [k for k in keys if k.startswith("body.")]
    assert body and all(k in sd for k in body)
    if kind == "resnet":
        assert torch.equal(sd["body.2.conv1.weight"], source["layer3.0.conv1.weight"])


# ------------------------------------------------------------------ the loss terms (issue 29)

def test_is_restyle_follows_the_family():
    """The family's record decides (training.config once shadowed FAMILIES with a tuple: a TypeError)."""
    assert EncoderTrainConfig(family="restyle_e4e", encoder=TINY["tiny-restyle-e4e"]).is_restyle is True
    assert EncoderTrainConfig(family="psp", encoder=TINY["tiny-psp"]).is_restyle is False


def test_every_loss_weight_is_one_term_with_its_own_names():
    """Each ``*_lambda`` option is the weight of one term, which names its records; a checkpoint's options hold
    pSp's five weights, and e4e's two more in progressive runs (the official option sets)."""
    assert sorted(term.option for term in TERMS) == sorted(loss_weight_options())
    for attribute in ("label", "record"):
        assert len({getattr(term, attribute) for term in TERMS}) == len(TERMS), attribute
    psp = EncoderTrainConfig(family="restyle_psp", encoder=TINY["tiny-restyle-psp"])
    e4e = EncoderTrainConfig(family="restyle_e4e", encoder=TINY["tiny-restyle-e4e"])
    assert {"l2_lambda", "lpips_lambda", "id_lambda", "moco_lambda", "w_norm_lambda"} <= set(official_loss_options(psp))
    assert set(official_loss_options(e4e)) - set(official_loss_options(psp)) == {"delta_norm_lambda",
                                                                                 "w_discriminator_lambda"}


@pytest.mark.parametrize("method, domain, expected", [
    # the restyle-encoder README's commands (../shared/docs/TRAINING_NOTES.md)
    ("restyle_psp", "faces", dict(l2_lambda=1.0, lpips_lambda=0.8, id_lambda=0.1, moco_lambda=0.0, w_norm_lambda=0.0,
                                  w_discriminator_lambda=0.0)),
    ("restyle_e4e", "faces", dict(l2_lambda=1.0, lpips_lambda=0.8, id_lambda=0.1, moco_lambda=0.0,
                                  delta_norm_lambda=2e-4, w_discriminator_lambda=0.1)),
    ("restyle_psp", "church", dict(l2_lambda=1.0, lpips_lambda=0.8, id_lambda=0.0, moco_lambda=0.5)),
    # the mini recipes: L2 only (and e4e's delta regulariser), no latent discriminator
    ("restyle_e4e", "mini", dict(l2_lambda=1.0, lpips_lambda=0.0, id_lambda=0.0, moco_lambda=0.0, w_norm_lambda=0.0,
                                 delta_norm_lambda=2e-4, w_discriminator_lambda=0.0)),
])
def test_each_term_gives_its_weight_in_each_preset(method, domain, expected):
    weights = preset_weights(FAMILIES[method], DOMAINS[domain])
    assert {k: weights[k] for k in expected} == expected


def test_the_records_are_the_configured_terms_in_their_order():
    cfg = EncoderTrainConfig(family="restyle_e4e", encoder=TINY["tiny-restyle-e4e"], w_norm_lambda=0.01,
                             w_discriminator_lambda=0.1, progressive_start=1, lpips_lambda=0.0)
    torch.manual_seed(0)
    loss = EncoderLoss(cfg, discriminator=LatentCodesDiscriminator(cfg.encoder.style_dim, n_mlp=1))
    n_styles, dim = cfg.encoder.n_styles, cfg.encoder.style_dim
    y_hat, y = torch.rand(2, 3, 8, 8) * 2 - 1, torch.rand(2, 3, 8, 8) * 2 - 1
    latent, avg = torch.randn(2, n_styles, dim), torch.randn(n_styles, dim)
    total, parts = loss(y_hat, y, y, latent, avg, step=1)
    assert list(parts) == ["encoder_discriminator_loss", "total_delta_loss", "loss_l2", "loss_w_norm", "loss"]
    assert loss_names(cfg) == ["w_discriminator", "delta_norm", "l2", "w_norm"]
    by_hand = (0.1 * criteria.adversarial_loss(loss.terms[0].discriminator, latent, [0, 1])
               + 2e-4 * criteria.delta_loss(latent, 1) + criteria.l2_loss(y_hat, y)
               + 0.01 * criteria.w_norm_loss(latent, avg))
    assert torch.isclose(total, by_hand) and parts["loss"] == float(total.detach())


def test_every_missing_file_is_named_on_one_line(tmp_path, monkeypatch):
    """Two losses whose files are missing: one line names both, each with the option that switches it off."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    cfg = EncoderTrainConfig(family="restyle_psp", encoder=TINY["tiny-restyle-psp"], lpips_lambda=0.8,
                             moco_lambda=0.5, backbone_init="random")
    with pytest.raises(UsageError) as err:
        locate_weights(cfg, tmp_path / "weights")
    message = str(err.value)
    assert "\n" not in message and "alexnet-owt-7be5be79.pth" in message and "moco_v2_800ep_pretrain.pt" in message
    assert "--lpips_lambda 0" in message and "--moco_lambda 0" in message
    (tmp_path / "weights").mkdir()
    torch.save({}, tmp_path / "weights" / "moco_v2_800ep_pretrain.pt")
    with pytest.raises(UsageError, match="alexnet") as err:
        locate_weights(cfg, tmp_path / "weights")
    assert "moco_v2" not in str(err.value)
