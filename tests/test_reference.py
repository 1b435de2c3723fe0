"""Exactness against the official code: ../shared/reference (float64 cases, manifests)."""

from __future__ import annotations

import json

import pytest
import torch

from restyle_lab.facts.configs import GeneratorConfig, encoder_config_from_official
from restyle_lab.inversion import loops
from restyle_lab.models import Generator, StyleEncoder
from restyle_lab.models.checkpoints import load_network
from restyle_lab.models.net import InversionNet
from restyle_lab.records.state_dict import compare_state_dict, load_strict

F64 = dict(rtol=1e-7, atol=1e-8)
F32 = dict(rtol=1e-4, atol=1e-4)

# manifest name -> official encoder_type (from each manifest's "official_class")
ENCODER_MANIFESTS = {
    "restyle_psp_backbone_irse50_in6_s18": "BackboneEncoder",
    "restyle_psp_resnet34_in6_s16": "ResNetBackboneEncoder",
    "restyle_psp_resnet34_in6_s14": "ResNetBackboneEncoder",
    "restyle_psp_fpn_irse50_in6_s18": "GradualStyleEncoder",
    "restyle_psp_fpn_resnet34_in6_s16": "ResNetGradualStyleEncoder",
    "restyle_e4e_backbone_irse50_in6_s18": "ProgressiveBackboneEncoder",
    "restyle_e4e_resnet34_in6_s16": "ResNetProgressiveBackboneEncoder",
    "psp_original_fpn_irse50_in3_s18": "GradualStyleEncoder",
    "e4e_original_irse50_in3_s18": "Encoder4Editing",
}
FULL_FAMILIES = {"BackboneEncoder": "restyle_psp", "ResNetBackboneEncoder": "restyle_psp",
                 "ProgressiveBackboneEncoder": "restyle_e4e", "GradualStyleEncoder": "psp",
                 "Encoder4Editing": "e4e"}


def manifest(reference, name):
    return json.loads((reference / "manifests" / f"{name}.json").read_text())


def module_for_manifest(man):
    name = man["name"]
    if name.startswith("stylegan2_generator_"):
        return Generator(GeneratorConfig(man["output_size"]))
    if name in ENCODER_MANIFESTS:
        return StyleEncoder(encoder_config_from_official(ENCODER_MANIFESTS[name], man["input_nc"], man["n_styles"]))
    encoder_type = man["encoder_type"]
    gen = GeneratorConfig(man["output_size"])
    enc = encoder_config_from_official(encoder_type, man["input_nc"], gen.n_styles)
    return InversionNet(FULL_FAMILIES[encoder_type], enc, gen)


def all_manifests():
    from conftest import reference_dir

    ref = reference_dir()
    return sorted(p.stem for p in (ref / "manifests").glob("*.json")) if ref else ["<no reference bundle>"]


@pytest.mark.parametrize("name", all_manifests())
def test_manifest_keys_and_shapes(reference, name):
    man = manifest(reference, name)
    with torch.device("meta"):
        module = module_for_manifest(man)
    expected = {k: torch.empty(shape, device="meta") for k, shape, _ in man["tensors"]}
    report = compare_state_dict(module, expected)
    assert report.ok, report.format()
    assert list(module.state_dict()) == [k for k, _, _ in man["tensors"]], "key order differs from the official"


def official_checkpoint(fill, reference, case, tmp_path, dtype=None):
    """Write the case's weights in the official checkpoint layout; return the path."""
    config = case["config"]
    # ReStyle cases describe the merged opts, naive (pSp/e4e) cases the opts saved in the file
    if "opts_in_checkpoint" in config:
        opts = config["opts_in_checkpoint"]
    else:
        opts = config["opts"]
        opts = opts.get("ckpt_opts (TrainOptions defaults + overrides)", opts)
    sd = fill.make_state_dict(reference / "manifests" / f"{case['manifest'][0]}.json", seed=case["seed"])
    if dtype is not None:
        sd = {k: v.to(dtype) if v.is_floating_point() else v for k, v in sd.items()}
    path = tmp_path / f"{case['case']}.pt"
    torch.save({"state_dict": sd, "opts": dict(opts), "latent_avg": case["inputs"]["latent_avg"]}, path)
    return path


def assert_summary(fill, image, expected, tol):
    for key, value in fill.image_summary(image).items():
        assert torch.allclose(value, expected[key].to(value.dtype), **tol), \
            f"{key}: max abs diff {(value - expected[key]).abs().max().item():.3g}"


def load_official(fill, reference, case, tmp_path, dtype=torch.float64, file_dtype=None):
    """The case's network read from an official-layout checkpoint, the file then removed (a float64 faces
    file is 1.5 GB: a run of these cases would otherwise leave 15 GB behind in the temp folder)."""
    path = official_checkpoint(fill, reference, case, tmp_path, dtype=file_dtype)
    try:
        return load_network(path, dtype=dtype)
    finally:
        path.unlink()


def load_case(reference, name):
    return torch.load(reference / "cases" / f"{name}.pt", weights_only=True)


# ------------------------------------------------------------------ generators

def test_stylegan2_256(reference, fill):
    case = load_case(reference, "stylegan2_256")
    G = Generator(GeneratorConfig(256)).double().eval()
    load_strict(G, fill.make_state_dict(reference / "manifests/stylegan2_generator_256.json"), "generator", "fill")
    i, o = case["inputs"], case["outputs"]
    with torch.no_grad():
        assert torch.allclose(G.style(i["z"]), o["w"], **F64)
        img, lat = G([i["z"]], randomize_noise=False, return_latents=True)
        assert torch.allclose(lat, o["latent_from_z"], **F64)
        assert_summary(fill, img, o["image_from_z"], F64)
        img, _ = G([i["wplus"]], input_is_latent=True, randomize_noise=False)
        assert_summary(fill, img, o["image_from_wplus"], F64)
        img, lat = G([i["z"]], truncation=i["truncation"], truncation_latent=i["truncation_latent"],
                     randomize_noise=False, return_latents=True)
        assert torch.allclose(lat, o["latent_truncated"], **F64)
        assert_summary(fill, img, o["image_truncated"], F64)
        img, lat = G([i["z"], i["z2"]], inject_index=i["inject_index"], randomize_noise=False, return_latents=True)
        assert torch.allclose(lat, o["latent_mixed"], **F64)
        assert_summary(fill, img, o["image_mixed"], F64)


def test_stylegan2_1024(reference, fill):
    case = load_case(reference, "stylegan2_1024")
    G = Generator(GeneratorConfig(1024)).double().eval()
    load_strict(G, fill.make_state_dict(reference / "manifests/stylegan2_generator_1024.json"), "generator", "fill")
    o = case["outputs"]
    with torch.no_grad():
        img, _ = G([case["inputs"]["wplus"]], input_is_latent=True, randomize_noise=False)
    assert torch.allclose(torch.nn.AdaptiveAvgPool2d((256, 256))(img), o["image_face_pool_256"], **F64)
    for name, crop in o["crops"].items():
        rows, cols = name.split("_")
        r0, r1 = map(int, rows[4:].split("-"))
        c0, c1 = map(int, cols[4:].split("-"))
        assert torch.allclose(img[..., r0:r1, c0:c1], crop, **F64), name
    assert torch.allclose(img.mean(), o["image_mean"], **F64)
    assert torch.allclose(img.std(), o["image_std"], **F64)


# ------------------------------------------------------------------ encoders

@pytest.mark.parametrize("name", sorted(ENCODER_MANIFESTS))
def test_encoder_case(reference, fill, name):
    case = load_case(reference, f"encoder_{name}")
    man = manifest(reference, name)
    E = StyleEncoder(encoder_config_from_official(ENCODER_MANIFESTS[name], man["input_nc"], man["n_styles"]))
    E = E.double().eval()
    load_strict(E, fill.make_state_dict(man, seed=case["seed"]), "encoder", "fill")
    x = fill.decode_uint8_image(case["inputs"]["x_uint8"])
    assert case["outputs"], "case has no outputs"
    with torch.no_grad():
        for key, expected in case["outputs"].items():
            E.progressive_stage = int(key.rsplit("_", 1)[1]) if key.startswith("codes_stage_") else None
            codes = E(x)
            assert torch.allclose(codes, expected, **F64), f"{key}: {(codes - expected).abs().max().item():.3g}"


# ------------------------------------------------------------------ whole networks through the public loader

@pytest.mark.parametrize("name", ["restyle_psp_256", "restyle_e4e_256", "restyle_psp_cars_512"])
def test_restyle_loop_case(reference, fill, tmp_path, name):
    case = load_case(reference, name)
    net = load_official(fill, reference, case, tmp_path)
    assert net.info.filled == {}, "every option the architecture needs is in the case's opts"
    o = case["outputs"]
    x = fill.decode_uint8_image(case["inputs"]["x_uint8"])
    avg = loops.average_image(net)
    assert avg.dtype == torch.float32 and torch.equal(avg, o["avg_image"])
    steps = loops.run(net, x, len(o["latents"]), resize_outputs=True)
    for step, latent, images in zip(steps, o["latents"], o["images"]):
        assert torch.allclose(step.latent, latent, **F64), f"step {step.index} latent"
        assert_summary(fill, step.image, images, F64)
    assert torch.allclose(steps[-1].image, o["final_image_full"], **F64)
    if "resize_outputs_false" in o:  # cars at full size: rows 64:448 of the 512 image
        full = loops.run(net, x, len(o["latents"]), resize_outputs=False)
        assert tuple(full[-1].image.shape) == tuple(o["resize_outputs_false"]["final_image_shape"])
        assert_summary(fill, full[-1].image, o["resize_outputs_false"]["final_image"], F64)
        for a, b in zip(full, steps):
            assert torch.equal(a.latent, b.latent)


def test_restyle_psp_float32(reference, fill, tmp_path):
    case = load_case(reference, "restyle_psp_256")
    net = load_official(fill, reference, case, tmp_path, dtype=torch.float32, file_dtype=torch.float32)
    o = case["outputs"]["float32"]
    x = fill.decode_uint8_image(case["inputs"]["x_uint8"], torch.float32)
    assert torch.allclose(loops.average_image(net), o["avg_image"], **F32)
    steps = loops.run(net, x, len(o["latents"]))
    for step, latent, images in zip(steps, o["latents"], o["images"]):
        assert step.latent.dtype == torch.float32
        assert torch.allclose(step.latent, latent, **F32)
        assert_summary(fill, step.image, images, F32)


@pytest.mark.parametrize("name", ["naive_psp_256", "naive_e4e_256"])
def test_naive_loop_case(reference, fill, tmp_path, name):
    case = load_case(reference, name)
    net = load_official(fill, reference, case, tmp_path)
    assert net.family == ("psp" if "psp" in name else "e4e") and not net.is_restyle
    o = case["outputs"]
    x = fill.decode_uint8_image(case["inputs"]["x_uint8"])
    steps = loops.run(net, x, len(o["latents"]))
    for step, latent, images in zip(steps, o["latents"], o["images"]):
        assert torch.allclose(step.latent, latent, **F64), f"step {step.index}"
        assert_summary(fill, step.image, images, F64)


def test_official_checkpoint_with_missing_opts(reference, fill, tmp_path):
    """An old file without encoder_type / input_nc / output_size still loads; each choice is reported."""
    case = load_case(reference, "restyle_psp_256")
    path = official_checkpoint(fill, reference, case, tmp_path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["opts"] = {"start_from_latent_avg": True}
    torch.save(ckpt, path)
    net = load_network(path, dtype=torch.float64)
    path.unlink()
    assert net.info.filled["encoder_type"] == ("BackboneEncoder", "official default")
    assert net.info.filled["input_nc"] == (6, "encoder weights")
    assert net.info.filled["output_size"] == (256, "decoder weights")
    x = fill.decode_uint8_image(case["inputs"]["x_uint8"])
    with torch.no_grad():
        latent = net.encode(torch.cat([x, loops.average_image(net).double().expand_as(x)], 1))
    assert torch.allclose(latent, case["outputs"]["latents"][0], **F64)
