"""Inverters on tiny models: trace shapes, equality with the reference loops, optimisation, hybrids."""

from __future__ import annotations

import warnings

import pytest
import torch
from tiny import tiny_net

from restyle_lab.facts import notices
from restyle_lab.facts.geometry import Geometry
from restyle_lab.inversion import EncoderInverter, HybridInverter, Projector, ProjectorConfig, ReStyleInverter, loops
from restyle_lab.mini.render import render_batch
from restyle_lab.records.images import from_uint8

GEO = Geometry(64, (64, 64))


@pytest.fixture(scope="module")
def x():
    return from_uint8(render_batch("test", range(3)))


def test_restyle_trace_equals_reference_loop(x):
    net = tiny_net("restyle_psp")
    trace = ReStyleInverter(net, n_steps=4).invert(x)
    assert [s.step for s in trace.steps] == [1, 2, 3, 4] and trace.batch_size == 3
    reference = loops.run(net, x, 4)
    for s, r in zip(trace.steps, reference):
        assert s.latent.shape == (3, 10, 32) and s.image.shape == (3, 3, 64, 64)
        assert torch.equal(s.latent, r.latent) and torch.equal(s.image, r.image)
        assert s.seconds_per_image > 0
    assert torch.equal(trace.start_image[0], loops.average_image(net))
    cum = trace.cumulative_seconds()
    assert cum == sorted(cum) and cum[-1] == pytest.approx(sum(s.seconds_per_image for s in trace.steps))


def test_restyle_e4e_and_naive_traces(x):
    e4e = tiny_net("restyle_e4e")
    assert torch.equal(ReStyleInverter(e4e, 2).invert(x).steps[-1].latent, loops.run(e4e, x, 2)[-1].latent)
    psp = tiny_net("psp")
    single = EncoderInverter(psp, 1).invert(x)
    naive = EncoderInverter(psp, 3).invert(x)
    assert single.method == "psp" and naive.method == "psp_naive" and len(naive.steps) == 3
    assert torch.equal(single.steps[0].latent, naive.steps[0].latent)
    ref = loops.run(psp, x, 3)
    assert all(torch.equal(a.latent, b.latent) for a, b in zip(naive.steps, ref))
    with pytest.raises(ValueError, match="single-pass"):
        EncoderInverter(tiny_net("restyle_psp"))
    with pytest.raises(ValueError, match="ReStyle network"):
        ReStyleInverter(psp)


def test_bootstrapped_restyle_starts_from_the_first_network(x):
    first, second = tiny_net("restyle_psp", seed=1), tiny_net("restyle_psp", seed=2)
    boot = ReStyleInverter(second, 2, bootstrap=(ReStyleInverter(first, 1), 1)).invert(x)
    step1 = loops.run(first, x, 1)[0]
    expected = list(loops.iterate_restyle(second, x, 2, init_latent=step1.latent, init_image=step1.fed))
    assert torch.equal(boot.start_image, step1.fed)
    assert torch.equal(boot.steps[-1].latent, expected[-1].latent)


def test_projector_lowers_its_loss():
    net = tiny_net("psp")
    gen = net.decoder
    with torch.no_grad():  # a target the generator can reach, far from w_avg
        target, _ = gen([torch.randn(2, 32, generator=torch.Generator().manual_seed(5))], randomize_noise=False)
    proj = Projector(gen, net.latent_avg[0], ProjectorConfig(space="w+", perceptual=False, mse_weight=1.0,
                                                             record_at=(1, 25, 150)), geometry=GEO)
    assert proj.name == "optim_w+_mse"
    trace = proj.invert(target)
    mse = [((s.image - target) ** 2).mean().item() for s in trace.steps]
    assert [s.step for s in trace.steps] == [1, 25, 150]
    assert mse[2] < 0.5 * mse[0], mse
    # each snapshot keeps its own latent (not the optimised tensor, which later steps go on changing)
    latent_mse = [((s.latent - trace.steps[-1].latent) ** 2).mean().item() for s in trace.steps]
    assert latent_mse[0] > latent_mse[1] > latent_mse[2] == 0, latent_mse


def test_projector_names_the_mse_only_variant_when_vgg_is_missing(monkeypatch, tmp_path, capsys):
    import restyle_lab.inversion.projector as projector

    def offline(device):
        from restyle_lab.metrics.weights import MetricUnavailable

        raise MetricUnavailable("lpips_vgg", "the pretrained weight file vgg16-397923af.pth is not at X")

    monkeypatch.setattr(projector, "load_lpips_vgg", offline)
    monkeypatch.setattr(notices, "_SAID", set())  # said once per process: this test must see it said
    net = tiny_net("psp")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said as the package's one-line note, not as a warning
        proj = Projector(net.decoder, net.latent_avg[0], ProjectorConfig(space="w", record_at=(2,)), geometry=GEO)
    said = capsys.readouterr().out.strip().splitlines()
    assert len(said) == 1 and said[0].startswith("note: lpips_vgg is unavailable, so optimisation runs MSE-only")
    assert proj.name == "optim_w_mse" and "vgg16" in proj.unavailable
    assert proj.describe()["perceptual_unavailable"]


def test_hybrid_starts_from_the_encoders_latent(x):
    net = tiny_net("restyle_psp")
    enc = ReStyleInverter(net, 2)
    proj = Projector(net.decoder, net.latent_avg[0], ProjectorConfig(space="w+", perceptual=False, mse_weight=1.0,
                                                                     record_at=(1, 5)), geometry=GEO)
    trace = HybridInverter(enc, proj).invert(x)
    first = enc.invert(x)
    assert torch.equal(trace.info["init"]["latent"], first.steps[-1].latent)
    assert torch.allclose(trace.start_image, first.steps[-1].image, atol=1e-6)
    assert trace.method == "restyle_psp+optim_w+_mse" and [s.step for s in trace.steps] == [1, 5]
    with pytest.raises(ValueError, match="w\\+"):
        HybridInverter(enc, Projector(net.decoder, None, ProjectorConfig(space="w", perceptual=False), geometry=GEO))


def test_a_timing_pass_interleaves_its_methods_and_multiplies_out_the_optimisation(tmp_path, x, monkeypatch):
    """One pass, every method in turn each round (after its warm-up), times per step; an optimisation timed
    over steps 1 and 3 and multiplied out to each snapshot."""
    from tiny import write_tiny_checkpoints

    from restyle_lab.facts.methods import HybridSpec, ReStyleSpec
    from restyle_lab.inversion import timing

    paths = write_tiny_checkpoints(tmp_path)
    encoder = ReStyleSpec("restyle_psp", checkpoint=str(paths["restyle_psp"]), steps=2)
    hybrid = HybridSpec("restyle_psp+optim", encoder="restyle_psp", record_at=(1, 10, 100),
                        options={"perceptual": False})
    calls = []

    class Logged(timing.Inverters):
        def __getitem__(self, name):
            inverter = super().__getitem__(name)
            if not hasattr(inverter, "logged"):
                run = inverter.invert
                inverter.invert = lambda images: (calls.append((name, inverter._warm)), run(images))[1]
                inverter.logged = True
            return inverter

    monkeypatch.setattr(timing, "Inverters", Logged)
    table = timing.time_in_one_sitting({"restyle_psp": encoder, hybrid.name: hybrid},
                                       {"restyle_psp": x[:2], hybrid.name: x}, "cpu", "float32", "fast", "mini",
                                       rounds=3)
    assert [name for name, _ in calls] == ["restyle_psp", hybrid.name] * 3
    assert [warm for _, warm in calls[2:]] == [(2, 3, 64, 64), (3, 3, 64, 64)] * 2, "warmed up in round 1 only"
    assert table[["method", "step", "timed"]].values.tolist() == [
        ["restyle_psp", 1, True], ["restyle_psp", 2, True], [hybrid.name, 1, True], [hybrid.name, 10, False],
        [hybrid.name, 100, False]]
    assert table.batch.tolist() == [2, 2, 3, 3, 3] and set(table.steps_timed) == {"1, 2", "1, 3"}
    t1, t10, t100 = table[table.method == hybrid.name].seconds_per_image
    assert t1 > 0 and t100 - t1 == pytest.approx(11 * (t10 - t1))  # one per-step cost, multiplied out
    for column in timing.MACHINE_COLUMNS:
        assert table[column].nunique() == 1, f"{column}: one pass, one machine"
    assert table.threads.iloc[0] == torch.get_num_threads() and table.device.iloc[0] == "cpu"
