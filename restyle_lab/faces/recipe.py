"""The FFHQ alignment recipe (Karras et al., the FFHQ dataset's crops), from eye centres and mouth corners.

The recipe's facts, as published with FFHQ: the crop is an oriented square ("quad") centred at
the eye midpoint moved a tenth of the way towards the mouth midpoint; its half-width is the
larger of twice the eye distance and 1.8 times the eye-to-mouth distance; its x axis is the eye
direction combined with the eye-to-mouth direction turned a quarter turn. The image is first
shrunk by a whole factor while the quad stays over twice the output size, cropped to the quad
plus a border (a tenth of the quad, at least 3 px), padded by reflection where the quad leaves
the image (at least 0.3 of the quad when padding is needed) with the padding blurred (sigma 0.02
of the quad) and faded to the median colour, then the quad is mapped onto the output square
(bilinear) at a supersampled size and reduced with a Lanczos filter.

Written here from those facts; every coordinate is in pixels of the image as shown (x right, y down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

# (quad half-width per eye distance, per eye-to-mouth distance, centre shift towards the mouth)
EYE_SPAN, MOUTH_SPAN, CENTRE_SHIFT = 2.0, 1.8, 0.1
BORDER, MIN_BORDER, PAD_FRACTION, BLUR_FRACTION = 0.1, 3, 0.3, 0.02
SIZES = (256, 1024)  # the output sizes of `restyle-lab align` (torch-free here: the command line lists them)
SUPERSAMPLE = 4  # the quad is sampled at 4x the output size, then reduced (FFHQ: 4096 -> 1024)


@dataclass(frozen=True)
class FacePoints:
    """Eye centres and mouth corners [2] (x, y); left / right as seen in the image."""

    eye_left: np.ndarray
    eye_right: np.ndarray
    mouth_left: np.ndarray
    mouth_right: np.ndarray

    @classmethod
    def from_array(cls, pts) -> "FacePoints":
        """From [4, 2]: eye left, eye right, mouth left, mouth right."""
        pts = np.asarray(pts, dtype=np.float64).reshape(4, 2)
        return cls(*pts)

    def as_array(self) -> np.ndarray:
        return np.stack([self.eye_left, self.eye_right, self.mouth_left, self.mouth_right])


def _quarter_turn(v: np.ndarray) -> np.ndarray:
    """(x, y) -> (-y, x): a quarter turn clockwise on the screen (y points down)."""
    return np.array([-v[1], v[0]])


def face_quad(points: FacePoints) -> tuple[np.ndarray, float]:
    """(quad [4, 2]: top-left, bottom-left, bottom-right, top-right corners; its side length)."""
    eyes = (points.eye_left + points.eye_right) / 2
    eye_span = points.eye_right - points.eye_left
    eye_to_mouth = (points.mouth_left + points.mouth_right) / 2 - eyes
    axis = eye_span - _quarter_turn(eye_to_mouth)
    axis = axis / np.hypot(*axis) * max(np.hypot(*eye_span) * EYE_SPAN, np.hypot(*eye_to_mouth) * MOUTH_SPAN)
    down = _quarter_turn(axis)
    centre = eyes + eye_to_mouth * CENTRE_SHIFT
    quad = np.stack([centre - axis - down, centre - axis + down, centre + axis + down, centre + axis - down])
    return quad, 2 * float(np.hypot(*axis))


def _bounds(quad: np.ndarray) -> tuple[int, int, int, int]:
    return (math.floor(quad[:, 0].min()), math.floor(quad[:, 1].min()),
            math.ceil(quad[:, 0].max()), math.ceil(quad[:, 1].max()))


def _reflect_pad_blurred(img: Image.Image, pads: tuple, side: float) -> Image.Image:
    """Reflect-pad (left, top, right, bottom), then blur the padding and fade it to the median colour."""
    from scipy.ndimage import gaussian_filter

    left, top, right, bottom = pads  # all positive here
    arr = np.pad(np.asarray(img, dtype=np.float32), ((top, bottom), (left, right), (0, 0)), mode="reflect")
    h, w = arr.shape[:2]
    ys = np.arange(h, dtype=np.float32)[:, None, None]
    xs = np.arange(w, dtype=np.float32)[None, :, None]
    # 1 at the padding's outer edge, 0 where the photo starts, negative inside it (the blur reaches in a little)
    edge = np.maximum(1.0 - np.minimum(xs / left, (w - 1 - xs) / right),
                      1.0 - np.minimum(ys / top, (h - 1 - ys) / bottom))
    sigma = side * BLUR_FRACTION
    arr += (gaussian_filter(arr, [sigma, sigma, 0]) - arr) * np.clip(edge * 3.0 + 1.0, 0.0, 1.0)
    arr += (np.median(arr, axis=(0, 1)) - arr) * np.clip(edge, 0.0, 1.0)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")


def align_face(img: Image.Image, points: FacePoints, size: int = 256,
               pad: bool = True) -> tuple[Image.Image, np.ndarray]:
    """The FFHQ crop of one face: (RGB image [size, size], the quad in ``img``'s pixels).

    ``img``: RGB as shown (EXIF orientation applied); ``points``: that face's landmarks.
    """
    quad, side = face_quad(points)
    quad_in_img = quad.copy()
    shrink = int(math.floor(side / size * 0.5))
    if shrink > 1:
        img = img.resize((int(round(img.width / shrink)), int(round(img.height / shrink))), Image.Resampling.LANCZOS)
        quad, side = quad / shrink, side / shrink
    border = max(int(round(side * BORDER)), MIN_BORDER)
    x0, y0, x1, y1 = _bounds(quad)
    box = (max(x0 - border, 0), max(y0 - border, 0), min(x1 + border, img.width), min(y1 + border, img.height))
    if box[2] - box[0] < img.width or box[3] - box[1] < img.height:
        img = img.crop(box)
        quad = quad - box[:2]
    x0, y0, x1, y1 = _bounds(quad)
    pads = (max(border - x0, 0), max(border - y0, 0), max(x1 - img.width + border, 0), max(y1 - img.height + border, 0))
    if pad and max(pads) > border - 4:
        pads = tuple(max(p, int(round(side * PAD_FRACTION))) for p in pads)
        img = _reflect_pad_blurred(img, pads, side)
        quad = quad + pads[:2]
    sampled = size * SUPERSAMPLE
    out = img.transform((sampled, sampled), Image.Transform.QUAD, tuple((quad + 0.5).ravel()),
                        Image.Resampling.BILINEAR)
    return out.resize((size, size), Image.Resampling.LANCZOS), quad_in_img
