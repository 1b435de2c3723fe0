"""The ReStyle iteration and the naive iteration of single-pass encoders.

Both are generators yielding one ``Step`` at a time, so callers can time, store or
stop each step. They reproduce the official ``get_average_image`` / ``run_on_batch``
(ReStyle) and the "feed the output back" ablation (pSp / e4e) exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from ..models.net import InversionNet


@dataclass
class Step:
    """One iteration. image: what the official loop stores (pooled + cropped when
    ``resize_outputs``); fed: the [N, 3, H, W] image the next step reads; latent: w+."""

    index: int
    latent: torch.Tensor
    image: torch.Tensor
    fed: torch.Tensor


def average_image(net: InversionNet, float32_cast: bool = True) -> torch.Tensor:
    """y_0 = G(latent_avg) pooled (and cropped for cars): [3, H, W].

    ``float32_cast`` keeps the official ``.float()`` on this image; in float64 it moves
    step-0 latents by ~5e-8, so exact reproduction needs it.
    """
    if net.latent_avg is None:
        raise RuntimeError("average_image needs net.latent_avg")
    with torch.no_grad():
        image = net.synthesize(net.latent_avg.unsqueeze(0), resize=True)[0]
    return image.float() if float32_cast else image


# one network call: (input, previous latent or None) -> (image, latent); the default is ``net`` itself
Forward = Callable[[torch.Tensor, "torch.Tensor | None"], "tuple[torch.Tensor, torch.Tensor]"]


def iterate_restyle(net: InversionNet, x: torch.Tensor, n_steps: int, resize_outputs: bool = True,
                    avg_image: torch.Tensor | None = None, init_latent: torch.Tensor | None = None,
                    init_image: torch.Tensor | None = None, forward: Forward | None = None) -> Iterator[Step]:
    """ReStyle: w_{t+1} = w_t + E([x, y_t]), starting from (latent_avg, average image).

    x: [N, 3, H, W] in [-1, 1] at the encoder's input size. ``init_latent`` /
    ``init_image`` start from another inversion instead (encoder bootstrapping).
    ``forward`` replaces ``net``'s call (training: its DDP-wrapped encoder, autocast). As in the
    official coach, y_t and w_t are detached once their step is yielded (with gradients off, as in
    inference, that changes nothing): a loss back-propagated at each step reaches the encoder
    through that step only.
    """
    if not net.is_restyle:
        raise ValueError(f"iterate_restyle needs a ReStyle network; this one is {net.family!r} "
                         "(use iterate_naive for single-pass encoders)")
    if (init_latent is None) != (init_image is None):
        raise ValueError("give both init_latent and init_image, or neither")
    if init_image is None:
        avg = average_image(net) if avg_image is None else avg_image
        fed = avg.to(x.dtype).unsqueeze(0).repeat(x.shape[0], 1, 1, 1)
        latent = None
    else:
        fed, latent = init_image.to(x.dtype), init_latent.to(x.dtype)
    if forward is None:
        forward = lambda inp, prev: net(inp, latent=prev, resize=resize_outputs)  # noqa: E731
    for t in range(n_steps):
        image, latent = forward(torch.cat([x, fed], dim=1), latent)
        fed = net.to_input(image)
        yield Step(t, latent, image, fed)
        fed, latent = fed.detach(), latent.detach()


def iterate_naive(net: InversionNet, x: torch.Tensor, n_steps: int, resize_outputs: bool = True,
                  forward: Forward | None = None) -> Iterator[Step]:
    """Naive iteration of a single-pass pSp / e4e encoder: x_{t+1} = y_t (detached, and ``forward``
    as in ``iterate_restyle``; it gets None for the latent)."""
    if net.is_restyle:
        raise ValueError(f"iterate_naive is for single-pass encoders; this one is {net.family!r}")
    if forward is None:
        forward = lambda inp, prev: net(inp, resize=resize_outputs)  # noqa: E731
    fed = x
    for t in range(n_steps):
        image, latent = forward(fed, None)
        fed = net.to_input(image)
        yield Step(t, latent, image, fed)
        fed = fed.detach()


def iterate(net: InversionNet, x: torch.Tensor, n_steps: int, **kwargs) -> Iterator[Step]:
    """The iteration of ``net``'s family: ReStyle's for a ReStyle network, else the naive one."""
    return (iterate_restyle if net.is_restyle else iterate_naive)(net, x, n_steps, **kwargs)


def run(net: InversionNet, x: torch.Tensor, n_steps: int, **kwargs) -> list[Step]:
    """All steps of the right iteration for ``net`` (ReStyle or naive), without gradients."""
    with torch.no_grad():
        return list(iterate(net, x, n_steps, **kwargs))
