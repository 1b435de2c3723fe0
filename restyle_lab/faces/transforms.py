"""Checking an alignment against a known answer: an aligned face moved by a known similarity transform
(rotation, scale, shift, pasted into a larger canvas) must come back to its own crop. Used by the tests
and ``benchmarks/alignment.py``."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

FILL = (128, 128, 128)
# (angle in degrees, scale, shift in pixels): the extremes the tests check; benchmarks/alignment.py adds seeded ones
CHECK_CASES = ((0.0, 1.0, (0, 0)), (30.0, 1.0, (40, -20)), (-30.0, 1.0, (-30, 25)), (10.0, 0.5, (15, 10)),
               (-15.0, 1.5, (-40, 30)), (20.0, 0.7, (0, 0)))


def similarity_case(img: Image.Image, angle_deg: float, scale: float, shift=(0.0, 0.0), margin: float = 0.2):
    """(transformed image, ``move``: points [k, 2] of ``img`` -> where they went). The canvas (grey) leaves
    ``margin`` of the scaled face's size around it; ``shift`` moves the face from the canvas centre, in
    pixels; positive angles turn it anticlockwise on the screen."""
    w, h = img.size
    theta = math.radians(angle_deg)
    rot = scale * np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    side = int(math.ceil(max(w, h) * scale * (1 + 2 * margin) * 1.42))
    centre_in = np.array([w / 2, h / 2])
    centre_out = np.array([side / 2, side / 2]) + np.asarray(shift, dtype=np.float64)
    inv = np.linalg.inv(rot)
    offset = centre_in - inv @ centre_out  # PIL's AFFINE maps output pixels to input pixels
    coeffs = (inv[0, 0], inv[0, 1], offset[0], inv[1, 0], inv[1, 1], offset[1])
    out = img.transform((side, side), Image.Transform.AFFINE, coeffs, Image.Resampling.BICUBIC, fillcolor=FILL)
    return out, lambda pts: (np.asarray(pts, dtype=np.float64) - centre_in) @ rot.T + centre_out


def frame(img: Image.Image) -> np.ndarray:
    """The image's own corners [4, 2] in quad order: top-left, bottom-left, bottom-right, top-right."""
    w, h = img.size
    return np.array([[0, 0], [0, h], [w, h], [w, 0]], dtype=np.float64)


def corner_error(quad, true_quad, size: int) -> float:
    """Mean distance between the corners of two quads, in pixels of a ``size`` output of the true quad."""
    quad, true_quad = np.asarray(quad, dtype=np.float64), np.asarray(true_quad, dtype=np.float64)
    side = np.linalg.norm(true_quad[1] - true_quad[0])
    return float(np.linalg.norm(quad - true_quad, axis=1).mean() * size / side)


def psnr(a: Image.Image, b: Image.Image) -> float:
    """PSNR in dB of two same-size 8-bit RGB images."""
    x, y = (np.asarray(im.convert("RGB"), dtype=np.float64) for im in (a, b))
    mse = float(((x - y) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)
