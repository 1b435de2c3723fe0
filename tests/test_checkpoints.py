"""Checkpoint loading: round trips, official layouts, and every kind of bad file."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from restyle_lab.facts.configs import TINY
from restyle_lab.models.checkpoints import (
    CheckpointError,
    load_generator,
    load_network,
    network_opts,
    save_generator,
    save_network,
    split_prefix,
)
from restyle_lab.models.net import InversionNet


def tiny_net(family="restyle_psp", encoder="tiny-restyle-psp", seed=0):
    torch.manual_seed(seed)
    gen = TINY["tiny-generator"]
    net = InversionNet(family, TINY[encoder], gen, latent_avg=torch.randn(gen.style_dim))
    return net.eval()


def official_layout(net, opts=None, latent_avg=True):
    sd = {f"encoder.{k}": v for k, v in net.encoder.state_dict().items()}
    sd.update({f"decoder.{k}": v for k, v in net.decoder.state_dict().items()})
    ckpt = {"state_dict": sd, "opts": network_opts(net) if opts is None else opts}
    if latent_avg:
        ckpt["latent_avg"] = net.latent_avg
    return ckpt


@pytest.mark.parametrize("encoder,family", [("tiny-restyle-psp", "restyle_psp"), ("tiny-restyle-psp-fpn", "restyle_psp"),
                                            ("tiny-restyle-psp-resnet", "restyle_psp"),
                                            ("tiny-restyle-e4e", "restyle_e4e"), ("tiny-psp", "psp"),
                                            ("tiny-e4e", "e4e")])
def test_round_trip_preserves_outputs(tmp_path, encoder, family):
    net = tiny_net(family, encoder)
    path = tmp_path / "net.pt"
    sha = save_network(net, path)
    assert len(sha) == 64
    again = load_network(path)
    assert again.family == family and again.encoder.config == net.encoder.config
    assert again.decoder.config == net.decoder.config and again.geometry == net.geometry
    x = torch.rand(2, net.encoder.config.input_nc, 64, 64) * 2 - 1
    with torch.no_grad():
        a, wa = net(x)
        b, wb = again(x)
    assert torch.equal(wa, wb) and torch.equal(a, b)
    assert again.info.sha256 == sha


def test_official_layout_without_our_config_is_rejected_for_custom_widths(tmp_path):
    # a narrow net saved without our config cannot pass as IR-SE50: the report names the shapes
    from dataclasses import replace

    gen = replace(TINY["tiny-generator"], style_dim=512)
    net = InversionNet("restyle_psp", replace(TINY["tiny-restyle-psp"], style_dim=512), gen)
    path = tmp_path / "narrow.pt"
    torch.save(official_layout(net, {"encoder_type": "BackboneEncoder", "input_nc": 6, "output_size": 64},
                               latent_avg=False), path)
    with pytest.raises(CheckpointError) as err:
        load_network(path)
    text = str(err.value)
    assert "narrow.pt" in text and "do not match" in text
    assert "wrong-shape keys" in text and "missing keys" in text and "body.*" in text
    tiny = tmp_path / "tiny.pt"  # and a 32-d generator cannot sit behind a 512-d official encoder
    torch.save(official_layout(tiny_net(), {"encoder_type": "BackboneEncoder"}), tiny)
    with pytest.raises(CheckpointError, match=r"tiny\.pt: encoder style_dim 512 != generator style_dim 32"):
        load_network(tiny)


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "cut.pt"
    save_network(tiny_net(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pt: not a readable PyTorch checkpoint .*truncated"):
        load_network(path)


def test_not_a_checkpoint_at_all(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("these are my notes, not weights")
    with pytest.raises(CheckpointError, match=r"notes\.pt"):
        load_network(path)
    with pytest.raises(CheckpointError, match="no such file"):
        load_network(tmp_path / "absent.pt")


class Payload:
    """Stands in for an object whose unpickling would run code."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickle_with_foreign_payload_is_refused_and_not_run(tmp_path):
    path = tmp_path / "evil.pt"
    net = tiny_net()
    ckpt = official_layout(net)
    ckpt["opts"]["hook"] = Payload()
    torch.save(ckpt, path)
    marker = tmp_path / "ran"
    code = (f"import sys; from restyle_lab.models.checkpoints import load_network, CheckpointError\n"
            f"try:\n    load_network({str(path)!r})\nexcept CheckpointError as e:\n    print('REFUSED', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert "REFUSED" in out.stdout, out.stderr
    assert "pickled Python objects" in out.stdout and "weights_only" in out.stdout
    assert "pwned" not in out.stdout and not marker.exists()


def test_generator_file_given_as_encoder_checkpoint(tmp_path):
    net = tiny_net()
    path = tmp_path / "stylegan2.pt"
    save_generator(net.decoder, path, w_avg=net.latent_avg)
    with pytest.raises(CheckpointError, match=r"stylegan2\.pt: this is a StyleGAN2 generator file .*g_ema"):
        load_network(path)
    gen, w_avg, info = load_generator(path)
    assert gen.config == net.decoder.config and torch.equal(w_avg, net.latent_avg)


def test_unknown_encoder_type(tmp_path):
    path = tmp_path / "odd.pt"
    torch.save(official_layout(tiny_net(), {"encoder_type": "MyFancyEncoder", "input_nc": 6}), path)
    with pytest.raises(CheckpointError, match=r"unknown encoder_type 'MyFancyEncoder'.*BackboneEncoder"):
        load_network(path)
    torch.save(official_layout(tiny_net(), {"encoder_type": "BackboneEncoderUsingLastLayerIntoW"}), path)
    with pytest.raises(CheckpointError, match="not supported"):
        load_network(path)


def test_wrong_shape_key(tmp_path):
    net = tiny_net()
    path = tmp_path / "bad_shape.pt"
    save_network(net, path)
    stored = torch.load(path, weights_only=True)
    stored["state_dict"]["encoder.styles.3.linear.weight"] = torch.zeros(7, 7)
    torch.save(stored, path)
    with pytest.raises(CheckpointError) as err:
        load_network(path)
    assert "styles.3.linear.weight: model (32, 32), file (7, 7)" in str(err.value)
    assert "missing" not in str(err.value)


def test_rosinality_generator_without_latent_avg_gets_computed_w_avg(tmp_path):
    net = tiny_net()
    path = tmp_path / "g.pt"
    torch.save({"g_ema": net.decoder.state_dict()}, path)  # rosinality train.py layout: no latent_avg
    with pytest.warns(UserWarning, match="computed w_avg"):
        gen, w_avg, info = load_generator(path)
    assert gen.config == net.decoder.config  # widths inferred from the weights alone
    expected = net.decoder.mean_latent(100_000, seed=0)[0]
    assert torch.allclose(w_avg, expected) and "computed" in info["notes"][0]


def test_family_rules():
    from restyle_lab.models.checkpoints import _family_of

    assert _family_of({"encoder_type": "GradualStyleEncoder"}, 6, "x") == "restyle_psp"
    assert _family_of({"encoder_type": "GradualStyleEncoder"}, 3, "x") == "psp"
    assert _family_of({"stylegan_size": 256}, 3, "x") == "e4e"
    assert _family_of({"encoder_type": "ResNetProgressiveBackboneEncoder"}, 6, "x") == "restyle_e4e"
    assert _family_of({}, 6, "x") == "restyle_psp"


def test_split_prefix_needs_the_dot():
    sd = {"encoder.a": 1, "encoderx.b": 2, "decoder.c": 3}
    assert dict(split_prefix(sd, "encoder")) == {"a": 1}
