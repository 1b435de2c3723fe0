"""The projector's images are independent problems: a batch gives what each image gives alone."""

from __future__ import annotations

import copy

import pytest
import torch
from tiny import GEOMETRY, tiny_net

from restyle_lab.facts.geometry import CARS_GEOMETRY, Geometry
from restyle_lab.inversion import HybridInverter, Projector, ProjectorConfig, ReStyleInverter
from restyle_lab.inversion.projector import content_seeds, noise_regularizer
from restyle_lab.metrics.lpips_metric import LpipsUnavailable, load_lpips
from restyle_lab.models import set_impl
from restyle_lab.models.net import render

F64 = dict(rtol=1e-9, atol=1e-10)
CONFIG = ProjectorConfig(space="w+", perceptual=False, mse_weight=1.0, record_at=(1, 3, 5))


@pytest.fixture(scope="module")
def targets():
    """Three reachable float64 targets [3, 3, 64, 64] of the tiny generator."""
    net = tiny_net("psp").double()
    with torch.no_grad():
        z = torch.randn(3, 32, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
        images, _ = net.decoder([z], randomize_noise=False)
    return images


def _projector(impl="reference", config=CONFIG):
    net = tiny_net("psp").double()
    return Projector(net.decoder, net.latent_avg[0], config, geometry=GEOMETRY, impl=impl)


def _assert_same_steps(batch_trace, singles, order):
    for k, single in zip(order, singles):
        for a, b in zip(batch_trace.steps, single.steps):
            assert a.step == b.step
            assert torch.allclose(a.latent[k], b.latent[0], **F64), f"image {k}, step {a.step}: latent"
            assert torch.allclose(a.image[k], b.image[0], **F64), f"image {k}, step {a.step}: image"


@pytest.mark.parametrize("impl", ["reference", "fast"])
def test_batch_equals_one_image_at_a_time(targets, impl):
    proj = _projector(impl)
    together = proj.optimize(targets)
    alone = [proj.optimize(targets[k: k + 1]) for k in range(3)]
    _assert_same_steps(together, alone, range(3))
    order = [2, 0, 1]  # and the order inside the batch does not matter either
    _assert_same_steps(proj.optimize(targets[order]), [alone[k] for k in order], range(3))


def test_w_space_from_w_avg_and_explicit_seeds(targets):
    proj = _projector(config=ProjectorConfig(space="w", perceptual=False, mse_weight=1.0, record_at=(3,)))
    together = proj.optimize(targets, seeds=[5, 6, 7])
    for k in range(3):
        alone = proj.optimize(targets[k: k + 1], seeds=[5 + k])
        assert torch.allclose(together.steps[0].latent[k], alone.steps[0].latent[0], **F64)
    same_key = proj.optimize(targets[:2], seeds=[9, 9])
    other_key = proj.optimize(targets[:2], seeds=[9, 10])
    assert torch.equal(same_key.steps[0].latent[0], other_key.steps[0].latent[0])
    assert not torch.equal(same_key.steps[0].latent[1], other_key.steps[0].latent[1])
    with pytest.raises(ValueError, match="one key per image"):
        proj.optimize(targets, seeds=[1])


def test_content_seeds_follow_the_image_not_its_position(targets):
    keys = content_seeds(targets)
    assert len(set(keys)) == 3 and content_seeds(targets[[1, 0]]) == [keys[1], keys[0]]
    assert content_seeds(targets.float()) == keys  # the uint8 codes decide, not the float dtype


def test_hybrid_batch_equals_one_image_at_a_time(targets):
    net = tiny_net("restyle_psp").double()
    proj = Projector(net.decoder, net.latent_avg[0], CONFIG, geometry=GEOMETRY)
    hybrid = HybridInverter(ReStyleInverter(net, 1), proj)
    together = hybrid.invert(targets)
    _assert_same_steps(together, [hybrid.invert(targets[k: k + 1]) for k in range(3)], range(3))


def test_noise_regularizer_is_per_image():
    gen = torch.Generator().manual_seed(12)
    noises = [torch.randn(3, 1, s, s, generator=gen, dtype=torch.float64) for s in (4, 8, 8, 16, 16, 32)]
    batch = noise_regularizer(noises)
    assert batch.shape == (3,)
    for k in range(3):
        alone = noise_regularizer([n[k: k + 1] for n in noises])
        assert torch.allclose(batch[k], alone[0], **F64)
    # by hand for one map: squared mean of the one-pixel autocorrelations, at 16 and 8 px
    n = noises[3][0:1]
    expected = 0.0
    for m in (n, torch.nn.functional.avg_pool2d(n, 2)):
        expected += (m * m.roll(1, 3)).mean() ** 2 + (m * m.roll(1, 2)).mean() ** 2
    assert torch.allclose(noise_regularizer([n]), expected.reshape(1), **F64)


def test_render_is_what_synthesize_shows():
    net = tiny_net("restyle_psp")
    codes = net.latent_avg.unsqueeze(0)
    with torch.no_grad():
        assert torch.equal(net.synthesize(codes), render(net.decoder, net.geometry, codes))
        full, _ = net.decoder([codes], input_is_latent=True, randomize_noise=False)
        cars = render(net.decoder, CARS_GEOMETRY, codes)  # 64 px pooled to 256 (upsampling), rows 32:224
        pooled = torch.nn.functional.adaptive_avg_pool2d(full, (256, 256))[:, :, 32:224, :]
        assert torch.equal(cars, pooled)
        rows = Geometry(64, (64, 64), crop_pooled=(8, 56), crop_full=(16, 48))
        assert torch.equal(render(net.decoder, rows, codes, resize=False), full[:, :, 16:48])
        assert torch.equal(render(net.decoder, rows, codes), full[:, :, 8:56])


def test_projector_perceptual_loader_is_lpips_and_offline_is_loud(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(LpipsUnavailable, match="vgg16-397923af.pth") as err:
        load_lpips(net="vgg", allow_download=False)
    assert err.value.name == "lpips_vgg_v0.1"
    with pytest.raises(ValueError, match="net must be one of"):
        load_lpips(net="squeeze")


def test_projector_impl_switches_its_generator():
    net = tiny_net("psp")
    gen = copy.deepcopy(net.decoder)
    Projector(gen, None, ProjectorConfig(perceptual=False), geometry=GEOMETRY, impl="fast")
    assert gen.convs[0].impl == "fast"
    set_impl(gen, "reference")
    Projector(gen, None, ProjectorConfig(perceptual=False), geometry=GEOMETRY)
    assert gen.convs[0].impl == "reference", "impl=None leaves the generator as it is"


def test_workers_split_the_batch_without_changing_it(targets):
    one = _projector().optimize(targets)
    proj = _projector()
    proj.workers = 2
    threads = torch.get_num_threads()
    two = proj.optimize(targets)
    assert torch.get_num_threads() == threads
    assert [s.step for s in two.steps] == [s.step for s in one.steps]
    _assert_same_steps(two, [proj.optimize(targets[k: k + 1]) for k in range(3)], range(3))
    assert all(a.seconds_per_image > 0 for a in two.steps)
    with pytest.raises(ValueError, match="workers must be at least 1"):
        Projector(tiny_net("psp").decoder, None, CONFIG, geometry=GEOMETRY, workers=0)


@pytest.mark.parametrize("kind", ["projector", "hybrid"])
def test_progress_counts_the_recorded_run_not_the_warm_up(targets, kind):
    """The step callback moves by the batch's images over the recorded steps only: a warm-up pass (each new
    input shape, before timing) reported there made the console show more images done than there are."""
    net = tiny_net("restyle_psp").double()
    proj = Projector(net.decoder, net.latent_avg[0], CONFIG, geometry=GEOMETRY, workers=2)
    inverter = proj if kind == "projector" else HybridInverter(ReStyleInverter(net, 1), proj)
    calls = []
    inverter.observe(lambda done, total, k: calls.append((done, total, k)))
    inverter.invert(targets)
    assert inverter._warm == tuple(targets.shape), "the warm-up ran"
    assert {total for _, total, _ in calls} == {CONFIG.record_at[-1]}
    assert sum(k / total for _, total, k in calls) == pytest.approx(targets.shape[0])
    assert proj.on_step is not None, "the callback is back after the warm-up"
