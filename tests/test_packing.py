"""Packed (int8 + generator reference) encoder files, the form the mini encoders ship in."""

from __future__ import annotations

import shutil

import pytest
import torch
from tiny import tiny_net

from restyle_lab.models.checkpoints import CheckpointError, load_network, save_generator, save_network
from restyle_lab.records.files import read_torch as read_file
from restyle_lab.records.packing import PACKED_KEY, dequantize_rows, pack, quantize_rows, unpack


def test_rowwise_int8_error_is_within_half_a_step():
    w = torch.randn(16, 8, 3, 3) * torch.logspace(-3, 0, 16)[:, None, None, None]
    q, scale = quantize_rows(w)
    assert q.dtype == torch.int8 and scale.shape == (16,)
    err = (dequantize_rows(q, scale) - w).abs().reshape(16, -1).amax(1)
    assert torch.all(err <= scale / 2 + 1e-7)


@pytest.fixture
def files(tmp_path):
    net = tiny_net("restyle_psp")
    save_network(net, tmp_path / "enc.pt")
    save_generator(net.decoder, tmp_path / "gen.pt", w_avg=net.latent_avg[0])
    return net, tmp_path


def test_packed_file_loads_as_the_dequantised_network(files):
    net, d = files
    pack(d / "enc.pt", d / "packed.pt", d / "gen.pt")
    ckpt = read_file(d / "packed.pt")
    assert "state_dict" not in ckpt and ckpt[PACKED_KEY]["int8"]
    loaded = load_network(d / "packed.pt")
    for key, value in loaded.encoder.state_dict().items():
        original = net.encoder.state_dict()[key]
        if f"encoder.{key}" in ckpt[PACKED_KEY]["int8"]:
            q, s = quantize_rows(original)
            assert torch.equal(value, dequantize_rows(q, s))
        else:
            assert torch.equal(value, original)
    for key, value in loaded.decoder.state_dict().items():
        assert torch.equal(value, net.decoder.state_dict()[key])
    assert torch.equal(loaded.latent_avg, net.latent_avg)
    # unpacked: a plain official layout with the same weights
    unpack(d / "packed.pt", d / "official.pt")
    plain = read_file(d / "official.pt")
    assert PACKED_KEY not in plain and any(k.startswith("decoder.") for k in plain["state_dict"])
    again = load_network(d / "official.pt")
    for a, b in zip(again.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


def test_packing_refuses_a_foreign_generator(files):
    net, d = files
    other = tiny_net("restyle_psp", seed=1)
    with torch.no_grad():
        for p in other.decoder.parameters():
            p.add_(1.0)
    save_generator(other.decoder, d / "other.pt")
    with pytest.raises(CheckpointError, match="not the generator"):
        pack(d / "enc.pt", d / "packed.pt", d / "other.pt")


def test_missing_or_changed_generator_is_named(files, tmp_path_factory):
    net, d = files
    pack(d / "enc.pt", d / "packed.pt", d / "gen.pt")
    alone = tmp_path_factory.mktemp("alone")
    shutil.copy(d / "packed.pt", alone / "packed.pt")
    with pytest.raises(CheckpointError, match="gen.pt"):
        load_network(alone / "packed.pt")
    save_generator(tiny_net("restyle_psp", seed=3).decoder, alone / "gen.pt", w_avg=torch.zeros(net.decoder.style_dim))
    with pytest.raises(CheckpointError, match="sha256 differs"):
        load_network(alone / "packed.pt")


def test_generator_loader_reads_the_decoder_of_a_packed_file(files):
    from restyle_lab.models.checkpoints import load_generator

    net, d = files
    pack(d / "enc.pt", d / "packed.pt", d / "gen.pt")
    gen, _, info = load_generator(d / "packed.pt")
    for key, value in gen.state_dict().items():
        assert torch.equal(value, net.decoder.state_dict()[key])
