"""Validation while an encoder trains: the test images inverted as inference inverts them (eval mode,
every ReStyle step), scored with the evaluation's own metrics per step, and the official validation
loss (the training loss at the last step), which picks the best checkpoint.
"""

from __future__ import annotations

import numpy as np
import torch

from ..inversion.loops import iterate_naive, iterate_restyle
from ..metrics import METRICS, MetricUnavailable
from ..models.impl import get_impl, set_impl


class Validator:
    """Called as ``validator(net, avg_image, loss, step) -> {"loss", "<metric>_step<t>", ...}``.

    source: test images (``training.data``); metric_names: the domain's metrics (those whose weights
    are missing are skipped, said once); impl: the ops inference runs on.
    """

    def __init__(self, source, n_steps: int, batch_size: int, device, metric_names, impl: str = "reference",
                 log=print):
        self.source, self.n_steps, self.batch_size, self.device, self.impl = source, n_steps, batch_size, device, impl
        self.metrics = {}
        for name in metric_names:
            try:
                self.metrics[name] = METRICS[name].build(device)
            except MetricUnavailable as err:
                log(f"validation without {name}: {err.reason}")

    def __call__(self, net, avg_image, loss, step: int) -> dict:
        was, decoder_impl = net.encoder.training, get_impl(net.decoder)
        net.eval()
        set_impl(net, self.impl)
        sums, counts, losses = {}, {}, []
        dtype = next(net.decoder.parameters()).dtype  # the run's: float32, or float64
        try:
            with torch.no_grad():
                for start in range(0, len(self.source), self.batch_size):
                    x, y = self.source.load(np.arange(start, min(start + self.batch_size, len(self.source))))
                    x = x.to(self.device, dtype)
                    y = x if y is None else y.to(self.device, dtype)
                    # the metrics' networks are float32 whatever the run trains in
                    prepared = {name: m.prepare(y.float()) for name, m in self.metrics.items()}
                    if net.is_restyle:
                        steps = list(iterate_restyle(net, x, self.n_steps, avg_image=avg_image))
                    else:
                        steps = list(iterate_naive(net, x, 1))
                    for s in steps:
                        for name, metric in self.metrics.items():
                            values = metric(s.image.float(), prepared[name]).double()
                            key = f"{name}_step{s.index + 1}"
                            ok = ~torch.isnan(values)
                            sums[key] = sums.get(key, 0.0) + float(values[ok].sum())
                            counts[key] = counts.get(key, 0) + int(ok.sum())
                    last = steps[-1]
                    _, parts = loss(last.image.to(dtype), y, x, last.latent.to(dtype), net.latent_avg, step)
                    losses.append((parts["loss"], len(x)))
        finally:
            set_impl(net.encoder, "reference")
            set_impl(net.decoder, decoder_impl)
            net.encoder.train(was)
        out = {"loss": sum(v * n for v, n in losses) / sum(n for _, n in losses)}
        out.update({k: sums[k] / counts[k] for k in sums if counts[k]})
        return out


def metric_names(domain) -> list[str]:
    """The evaluation's metrics for ``domain`` (restyle_lab.facts.domains.Domain.metrics), known ones only."""
    return [m for m in domain.metrics if m in METRICS]
