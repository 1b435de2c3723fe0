"""NVlabs stylegan2-ada-pytorch snapshots: read without running them, converted to rosinality's layout, and
checked against what NVlabs' own code computed (``../shared/nvlabs/*_expected.pt``)."""

from __future__ import annotations

import pytest
import torch
from conftest import shared_dir
from nvlabs_pickles import (
    SNAPSHOTS,
    tiny_snapshot,
    write_code_pickle,
    write_renamed_class,
    write_snapshot,
    write_truncated,
    write_unknown_class_pickle,
)

from restyle_lab.cli import main
from restyle_lab.facts.configs import GeneratorConfig
from restyle_lab.facts.errors import CheckpointError
from restyle_lab.models import Generator, set_impl
from restyle_lab.models.checkpoints import convert_nvlabs, load_generator
from restyle_lab.records.files import read_torch
from restyle_lab.records.nvlabs_pickle import PersistentRecord, read_snapshot

# Measured: the largest |difference| from NVlabs' float32 outputs is 6.4e-6 (images of range +-6.8;
# the mapping's w exactly 0, truncated w 1.2e-7), both snapshots, both impls. Float32 rounding of a
# different summation order; the bound leaves 3x room.
IMAGE_TOL = 2e-5
W_TOL = 1e-6


def nvlabs_dir():
    folder = shared_dir() / "nvlabs"
    if not (folder / f"{SNAPSHOTS[0]}.pkl").exists():
        pytest.skip(f"NVlabs snapshots not found in {folder}")
    return folder


IMAGES = (("image", "ws"), ("image_truncated_psi0.7", "ws_truncated_psi0.7"), ("image_mixed", "ws_mixed"))


def _outputs(gen, w_avg, expected, images=IMAGES):
    with torch.no_grad():
        w = gen.style(expected["z"])
        ws = w[:, None].expand(-1, gen.n_latent, -1)
        ws_trunc = w_avg + 0.7 * (ws - w_avg)
        out = {key: gen([expected[src]], input_is_latent=True, randomize_noise=False)[0] for key, src in images}
    return {"ws": ws, "ws_truncated_psi0.7": ws_trunc, **out}


@pytest.mark.parametrize("name", SNAPSHOTS)
def test_converted_snapshot_reproduces_nvlabs_outputs(name, tmp_path):
    folder = nvlabs_dir()
    expected = torch.load(folder / f"{name}_expected.pt", map_location="cpu", weights_only=True)
    out = tmp_path / "g.pt"
    convert_nvlabs(folder / f"{name}.pkl", out)
    assert set(read_torch(out)) == {"g_ema", "latent_avg", "restyle_lab", "converted_from"}
    direct = load_generator(folder / f"{name}.pkl")
    gen, w_avg, info = load_generator(out)  # the package's strict loader reads the converted file
    assert gen.n_latent == int(expected["num_ws"])
    assert torch.equal(w_avg, expected["w_avg"]) and torch.equal(direct[1], w_avg)
    assert all(torch.equal(a, b) for a, b in zip(gen.state_dict().values(), direct[0].state_dict().values()))
    for impl, images in (("reference", IMAGES), ("fast", IMAGES[:1])):
        got = _outputs(set_impl(gen, impl), w_avg, expected, images)
        for key, value in got.items():
            tol = IMAGE_TOL if key.startswith("image") else W_TOL
            diff = (value - expected[key]).abs().max().item()
            assert diff <= tol, f"{name} {impl} {key}: max |diff| {diff:.3g} > {tol}"


def test_config_and_info_follow_the_snapshot(tmp_path):
    folder = nvlabs_dir()
    gen, _, info = load_generator(folder / "sg2ada_res128_auto.pkl")
    cfg = info["config"]
    assert (cfg.size, cfg.style_dim, cfg.n_mlp, cfg.channel_base, cfg.channel_max, cfg.conv_clamp) == \
        (128, 64, 2, 4096, 64, 256.0)
    assert [cfg.channels(2 ** k) for k in range(2, 8)] == [64, 64, 64, 64, 64, 32]
    assert info["nvlabs"]["num_fp16_res"] == 4 and info["nvlabs"]["conv_clamp"] == 256
    _, _, info64 = load_generator(folder / "sg2ada_res64_map8.pkl")
    assert (info64["config"].n_mlp, info64["config"].conv_clamp, info64["nvlabs"]["num_fp16_res"]) == (8, None, 0)
    snapshot = read_snapshot(folder / "sg2ada_res64_map8.pkl")
    assert isinstance(snapshot["G_ema"], PersistentRecord) and snapshot["G_ema"].class_name == "Generator"
    assert snapshot["training_set_kwargs"]["resolution"] == 64 and snapshot["augment_pipe"] is None


def test_conv_clamp_bounds_every_activation_on_both_paths():
    """The shared snapshots never reach their clamp (activations stay under 7), so a small clamp checks it."""
    torch.manual_seed(0)
    gen = Generator(GeneratorConfig(size=16, style_dim=16, n_mlp=1, channel_multiplier=1, channel_base=256,
                                    channel_max=16, conv_clamp=0.5)).eval()
    outputs = []
    hooks = [m.register_forward_hook(lambda m, i, o: outputs.append(o.abs().max().item()))
             for m in [gen.conv1, *gen.convs]]
    w = torch.randn(2, gen.n_latent, 16)
    with torch.no_grad():
        ref = gen([w], input_is_latent=True, randomize_noise=False)[0]
        fast = set_impl(gen, "fast")([w], input_is_latent=True, randomize_noise=False)[0]
        unclamped = Generator(GeneratorConfig(**{**gen.config.__dict__, "conv_clamp": None})).eval()
        unclamped.load_state_dict(gen.state_dict())
        free = unclamped([w], input_is_latent=True, randomize_noise=False)[0]
    for h in hooks:
        h.remove()
    assert max(outputs) <= 0.5 + 1e-6
    assert (ref - fast).abs().max().item() < 1e-5
    assert (ref - free).abs().max().item() > 0.1  # the clamp changed the image


def test_pickled_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran.txt"
    evil = write_code_pickle(tmp_path / "evil.pkl", marker)
    with pytest.raises(CheckpointError, match=r"refused: the pickle references posix\.system"):
        read_snapshot(evil)
    with pytest.raises(CheckpointError, match="posix.system"):
        load_generator(evil)
    assert main(["sample", "--generator", str(evil), "--out", str(tmp_path / "s")]) == 2
    assert main(["convert", str(evil), str(tmp_path / "g.pt")]) == 2
    assert not marker.exists() and not (tmp_path / "g.pt").exists() and not (tmp_path / "s").exists()


def test_unknown_class_is_named(tmp_path):
    with pytest.raises(CheckpointError, match=r"training\.networks\.Generator") as err:
        read_snapshot(write_unknown_class_pickle(tmp_path / "u.pkl"))
    assert "\n" not in str(err.value)
    # a persistent record of another architecture (StyleGAN3's layers are not SynthesisLayer)
    other = write_renamed_class(nvlabs_dir() / "sg2ada_res64_map8.pkl", tmp_path / "sg3.pkl",
                                "SynthesisLayer", "SynthesisInput")
    with pytest.raises(CheckpointError, match="b4.conv1 is a SynthesisInput, not stylegan2-ada-pytorch's Synth"):
        load_generator(other)


def test_truncated_snapshot_is_one_line(tmp_path):
    cut = write_truncated(nvlabs_dir() / "sg2ada_res64_map8.pkl", tmp_path / "cut.pkl")
    with pytest.raises(CheckpointError, match="truncated or corrupt") as err:
        load_generator(cut)
    assert "\n" not in str(err.value) and str(cut) in str(err.value)


def test_the_tiny_snapshot_written_here_converts_whole(tmp_path):
    """The snapshot the bad-input table edits one entry at a time converts as it is: each of those rows fails for
    the one thing it changes."""
    snapshot = tiny_snapshot()
    assert main(["convert", str(write_snapshot(tmp_path / "s.pkl", snapshot)), str(tmp_path / "g.pt")]) == 0
    gen, w_avg, info = load_generator(tmp_path / "g.pt")
    mapping = snapshot["G_ema"].state["_modules"]["mapping"].state
    assert info["config"].size == 8 and info["config"].style_dim == 8 and info["config"].n_mlp == 2
    assert torch.equal(w_avg, mapping["_buffers"]["w_avg"])
    assert torch.equal(gen.state_dict()["style.2.weight"], mapping["_modules"]["fc1"].state["_parameters"]["weight"])
    assert main(["sample", "--generator", str(tmp_path / "g.pt"), "--out", str(tmp_path / "s"), "--n", "2"]) == 0
