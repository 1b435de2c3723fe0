"""Ranger, the optimiser the official pSp / e4e / ReStyle encoders were trained with.

The official ``training/ranger.py`` (lessw2020's version 20.4.11) is RAdam with Lookahead and
gradient centralisation, one update per parameter:

1. gradient centralisation: a gradient with more than one dimension (conv and fc weights,
   ``use_gc=True, gc_conv_only=False``) loses its mean over every dimension but the first;
2. RAdam with betas (0.95, 0.999), eps 1e-5, weight decay 0: the moment estimates, and a
   rectified adaptive step once the variance's degrees of freedom rho_t exceed 5
   (``N_sma_threshhold``), plain momentum before that;
3. Lookahead (k=6, alpha=0.5): every k-th update of a parameter, its slow copy (taken before its
   first update) moves alpha of the way to it and the parameter is reset to the slow copy.

``torch.optim.RAdam`` computes step 2 with the same formula (its rectification threshold is the same
5), so this class adds steps 1 and 3 around it. Each parameter counts its own updates, as the
official one does, so parameters that first receive gradients late (e4e's progressive heads) start
their Lookahead cycle then.

Why not a library: ``pytorch-optimizer`` 4.1.0's ``Ranger`` (the maintained one) counts updates per
parameter group, not per parameter (so e4e's late heads get other bias corrections and Lookahead
phases), rectifies at rho_t >= 5 instead of > 5, and by default (``degenerated_to_sgd=False``) moves the
first updates by +lr * m / (1 - beta1^t), against the gradient's descent direction. ``torch-optimizer``
0.3.0 and ``pytorch-ranger`` 0.1.1 are unmaintained since 2021 and 2020.
"""

from __future__ import annotations

import torch


class Ranger(torch.optim.RAdam):
    """RAdam + gradient centralisation + Lookahead with the official defaults (module docstring).

    The Lookahead slow copies live in the optimiser state (``slow_buffer``), so ``state_dict()`` /
    ``load_state_dict()`` carry them and a resumed run continues exactly.
    """

    def __init__(self, params, lr: float = 1e-3, alpha: float = 0.5, k: int = 6, betas=(0.95, 0.999),
                 eps: float = 1e-5, weight_decay: float = 0.0, use_gc: bool = True, gc_conv_only: bool = False):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"Lookahead alpha must be in [0, 1]. Got: {alpha}")
        if k < 1:
            raise ValueError(f"Lookahead k must be at least 1. Got: {k}")
        # foreach=False: the single-tensor update, the same arithmetic on every device
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=False)
        for group in self.param_groups:
            group.setdefault("alpha", alpha)
            group.setdefault("k", k)
            group.setdefault("use_gc", use_gc)
            group.setdefault("gc_min_dims", 4 if gc_conv_only else 2)

    @torch.no_grad()
    def step(self, closure=None):
        stepped, first = [], {}
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Ranger does not support sparse gradients")
                grad = p.grad
                if group["use_gc"] and grad.dim() >= group["gc_min_dims"]:
                    grad.sub_(grad.mean(dim=tuple(range(1, grad.dim())), keepdim=True))
                if "slow_buffer" not in self.state[p]:
                    first[p] = p.detach().clone()
                stepped.append((group, p))
        loss = super().step(closure)
        for group, p in stepped:
            state = self.state[p]
            if p in first:
                state["slow_buffer"] = first[p]
            if int(state["step"]) % group["k"] == 0:
                slow = state["slow_buffer"]
                slow.add_(p.detach() - slow, alpha=group["alpha"])
                p.copy_(slow)
        return loss


def build_optimizer(name: str, params, lr: float):
    """The official choice: ``ranger`` (default) or ``adam`` (torch's Adam with its defaults)."""
    if name == "ranger":
        return Ranger(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"optim_name must be 'ranger' or 'adam'. Got: {name!r}")
