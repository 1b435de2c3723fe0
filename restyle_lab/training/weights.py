"""The pretrained files a training run reads besides the generator: where they are looked for, the
one-line error when one is missing, and loading each into its network.

Each file is looked for in ``--weights DIR`` first, then in torch's cache
(``$TORCH_HOME/hub/checkpoints``). What a run needs follows from its options: a loss whose weight is 0
needs nothing, and ``backbone_init='random'`` needs no backbone file. Every needed file is checked
before the run writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..facts.configs import IR_SE50
from ..facts.errors import UsageError
from ..metrics.weights import ALEXNET_FILE, torchvision_weight_path
from ..models.arcface import ArcFace
from ..records.files import read_torch

IRSE50_FILE = "model_ir_se50.pth"  # ArcFace IR-SE50 (TreB1eN), the official ID loss and faces backbone
MOCO_FILE = "moco_v2_800ep_pretrain.pt"  # MoCo v2 ResNet-50, the official similarity loss elsewhere
# torchvision's ImageNet ResNet34: its current file name, then the one the restyle-encoder README links
RESNET34_FILES = ("resnet34-b627a593.pth", "resnet34-333f7ec4.pth")
WHERE = {IRSE50_FILE: "the restyle-encoder README's Auxiliary Models (IR-SE50 Model)",
         MOCO_FILE: "the restyle-encoder README's Auxiliary Models (MoCov2 Model)",
         RESNET34_FILES[0]: "torchvision (downloads on first use of resnet34(weights='IMAGENET1K_V1'))",
         ALEXNET_FILE: "torchvision (downloads on first use of alexnet(weights='IMAGENET1K_V1'))"}


@dataclass(frozen=True)
class Need:
    """One file a run needs: what for, and the option that switches the need off."""

    names: tuple
    purpose: str
    switch_off: str


def backbone_need(cfg) -> Need | None:
    """The file that starts the backbone of ``cfg`` (an EncoderTrainConfig), if it starts from one."""
    if cfg.backbone_init != "pretrained":
        return None
    names = (IRSE50_FILE,) if cfg.encoder.backbone.kind == "ir_se" else RESNET34_FILES
    return Need(names, f"initialising the {cfg.encoder.backbone.kind} backbone", "--backbone-init random")


def find_file(names, weights_dir) -> Path | None:
    for name in names:
        for folder in ([Path(weights_dir)] if weights_dir else []) + [torchvision_weight_path(name).parent]:
            if (folder / name).is_file():
                return folder / name
    return None


def locate(needs, weights_dir) -> dict:
    """file name -> path of every file in ``needs``; the missing ones are one UsageError of one line that
    names each (once) with what needs it, where to get it and the option that switches the need off."""
    found, missing = {}, {}
    for need in needs:
        path = find_file(need.names, weights_dir)
        if path is not None:
            found[need.names[0]] = path
        elif need.names[0] not in missing:
            places = (f"{weights_dir} nor " if weights_dir else "") + str(torchvision_weight_path(need.names[0]).parent)
            missing[need.names[0]] = (f"{need.names[0]} is needed for {need.purpose} and is in neither {places}: get "
                                      f"it from {WHERE[need.names[0]]} into --weights DIR, or switch it off with "
                                      f"{need.switch_off}")
    if missing:
        raise UsageError("; and ".join(missing.values()))
    return found


def _state_dict(path) -> dict:
    ckpt = read_torch(path)
    return ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else ckpt


def load_arcface(path, device="cpu", backbone=IR_SE50) -> ArcFace:
    """The frozen ArcFace of ``model_ir_se50.pth`` (strict: every key and shape must match), eval mode."""
    net = ArcFace(backbone)
    _load_exact(net, _state_dict(path), path)
    return net.eval().requires_grad_(False).to(device)


def load_moco(path, device="cpu") -> nn.Module:
    """MoCo v2's query encoder: torchvision's ResNet-50 without its fc layer, from ``module.encoder_q.*``."""
    import torchvision

    model = torchvision.models.resnet50(weights=None)
    prefix = "module.encoder_q."
    sd = {k[len(prefix):]: v for k, v in _state_dict(path).items()
          if k.startswith(prefix) and not k.startswith(prefix + "fc")}
    model.fc = nn.Identity()
    _load_exact(model, sd, path)
    trunk = nn.Sequential(*list(model.children())[:-1])  # up to the global average pool: [N, 2048, 1, 1]
    return trunk.eval().requires_grad_(False).to(device)


def load_lpips_alex(path, device="cpu") -> nn.Module:
    """``lpips.LPIPS(net='alex', version='0.1')`` with its AlexNet read from ``path`` (the package ships its
    linear layers), frozen, eval mode."""
    import lpips

    model = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
    features = {k.removeprefix("features."): v for k, v in read_torch(path).items() if k.startswith("features.")}
    # the package splits torchvision's alexnet.features into slices that keep its indices
    sd = {}
    for name in model.net.state_dict():
        sd[name] = features[name.split(".", 1)[1]]
    model.net.load_state_dict(sd)
    return model.eval().requires_grad_(False).to(device)


def _load_exact(module: nn.Module, sd: dict, path) -> None:
    mine = module.state_dict()
    missing = sorted(set(mine) - set(sd))
    wrong = sorted(k for k in set(mine) & set(sd) if tuple(mine[k].shape) != tuple(sd[k].shape))
    if missing or wrong:
        what = (f"missing {missing[:3]}" if missing else "") + (f" wrong shapes {wrong[:3]}" if wrong else "")
        raise UsageError(f"{path}: not the expected weights ({what.strip()}); download the file again")
    module.load_state_dict({k: sd[k] for k in mine})


def init_backbone(encoder: nn.Module, path, seed: int) -> list[str]:
    """Start an encoder's backbone from pretrained weights, as the official pSp.load_weights does.

    IR-SE (faces): ``model_ir_se50.pth``'s stem and body. ResNet (other domains): torchvision's
    ImageNet ResNet34 stem (conv1, bn1) and layer1-4 as the body; the PReLU after the stem stays new.
    Either way the extra input channels of a 6-channel encoder get standard-normal weights (the
    official ``torch.randn``), seeded. Returns the encoder keys that were set.
    """
    sd = _state_dict(path)
    kind = encoder.config.backbone.kind
    if kind == "ir_se":
        source = {k: v for k, v in sd.items() if k.startswith(("input_layer.", "body."))}
        stem_key = "input_layer.0.weight"
    else:
        source = {k: v for k, v in sd.items() if k.startswith(("conv1.", "bn1."))}
        units = [len({k.split(".")[1] for k in sd if k.startswith(f"layer{i}.")}) for i in range(1, 5)]
        offsets = [sum(units[:i]) for i in range(4)]
        for k, v in sd.items():
            if k.startswith("layer"):
                stage, unit, rest = k.split(".", 2)
                source[f"body.{offsets[int(stage[5:]) - 1] + int(unit)}.{rest}"] = v
        stem_key = "conv1.weight"
    mine = encoder.state_dict()
    stem = mine[stem_key]
    if stem_key in source and stem.shape[1] != source[stem_key].shape[1]:
        weight = torch.randn(stem.shape, generator=torch.Generator().manual_seed(seed))
        weight[:, : source[stem_key].shape[1]] = source[stem_key]
        source[stem_key] = weight
    expected = [k for k in mine if k.startswith(("input_layer.", "body.", "conv1.", "bn1."))]
    missing = [k for k in expected if k not in source]
    wrong = [k for k in expected if k in source and tuple(source[k].shape) != tuple(mine[k].shape)]
    if missing or wrong:
        raise UsageError(f"{path}: does not fit the {kind} backbone (missing {missing[:3]}, wrong shapes "
                         f"{wrong[:3]}); give the official file")
    encoder.load_state_dict({k: source[k] for k in expected}, strict=False)
    return expected
