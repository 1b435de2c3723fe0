"""The encoders' style heads on the fast path (``impl="fast"``, eval mode).

Each of the n_styles map2style blocks (GradualStyleBlock) runs a few stride-2 3x3
convolutions down to 1x1, then an EqualLinear. On a CPU the late convolutions (4x4 and
2x2 maps) fall to a slow generic kernel far from the machine's matrix speed. Here each
convolution is im2col + one matrix product reading the weights in place, and heads that
read the same map share its im2col. The im2col rows are pixels ([N*h*w, C*k*k] @ W^T):
with few pixels (the 2x2 -> 1x1 step) that product is 3x faster than W @ columns. At batch 1 the heads are bound by
reading their weights (18 heads x 4 convolutions x 2.4M parameters for the faces
encoder), which both paths do once. The same sums as the reference, in another order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _conv_as_matmul(conv, rows: torch.Tensor, slope: float) -> torch.Tensor:
    """leaky_relu(conv) on im2col rows [N*L, C*kh*kw] -> [N*L, D]."""
    return F.leaky_relu(F.linear(rows, conv.weight.flatten(1), conv.bias), slope)


def _im2col(x: torch.Tensor, conv) -> tuple[torch.Tensor, int, int]:
    """x [N, C, H, W] -> (rows [N*h*w, C*kh*kw], h, w) for ``conv``'s kernel, stride and padding."""
    n, _, hi, wi = x.shape
    cols = F.unfold(x, conv.kernel_size, padding=conv.padding, stride=conv.stride)  # [N, C*k*k, h*w]
    h = (hi + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1
    w = (wi + 2 * conv.padding[1] - conv.kernel_size[1]) // conv.stride[1] + 1
    return cols.transpose(1, 2).reshape(n * h * w, cols.shape[1]), h, w


def style_head(block, x: torch.Tensor, first_cols=None) -> torch.Tensor:
    """One GradualStyleBlock: x [N, C, H, W] -> [N, D]. ``first_cols``: x's im2col, when shared."""
    n = x.shape[0]
    mods = list(block.convs)
    layers = list(zip(mods[::2], mods[1::2]))
    rows, h, w = first_cols if first_cols is not None else _im2col(x, layers[0][0])
    y = _conv_as_matmul(layers[0][0], rows, layers[0][1].negative_slope)
    for conv, act in layers[1:]:
        y = y.view(n, h, w, -1).permute(0, 3, 1, 2)
        rows, h, w = _im2col(y, conv)
        y = _conv_as_matmul(conv, rows, act.negative_slope)
    if (h, w) != (1, 1):
        raise ValueError(f"map2style expects its convolutions to reach 1x1, got {(h, w)}: "
                         "the input size does not match EncoderConfig.input_size")
    with torch.autocast(y.device.type, enabled=False):  # the codes stay float32 under autocast
        return block.linear(y.to(torch.promote_types(block.linear.weight.dtype, torch.float32)))


def style_heads(blocks: list, x: torch.Tensor) -> list:
    """[N, D] per GradualStyleBlock, all reading x [N, C, H, W] (one shared im2col)."""
    first = list(blocks[0].convs)[0]
    shared = _im2col(x, first)
    same = all(list(b.convs)[0].kernel_size == first.kernel_size and list(b.convs)[0].stride == first.stride
               and list(b.convs)[0].padding == first.padding for b in blocks)
    return [style_head(b, x, shared if same else None) for b in blocks]
