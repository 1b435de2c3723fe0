"""Procedural cartoon faces with known attributes: the mini domain's "FFHQ" and "CelebA-HQ".

Every image is a pure function of (split, index, style): the same seed renders the same
pixels on any machine. The "photo" style stands in for real faces (soft shading, gradient
backgrounds, fine texture); the "toon" style (flat colours, thick outlines, bigger eyes)
stands in for the toonify domain.
"""

from __future__ import annotations

import colorsys
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SPLITS = {"train": 0, "test": 1}
SUPERSAMPLE = 4

SKIN_TONES = np.array([[255, 224, 196], [241, 194, 155], [224, 172, 120], [198, 134, 90], [141, 85, 54],
                       [92, 56, 38]], dtype=np.float64)
HAIR_TONES = np.array([[25, 20, 18], [70, 45, 30], [120, 75, 40], [200, 160, 90], [170, 60, 30],
                       [150, 150, 155]], dtype=np.float64)


@dataclass(frozen=True)
class FaceAttributes:
    """Renderer parameters. Lengths are fractions of the image side; angles/levels in [-1, 1]."""

    head_w: float
    head_h: float
    head_x: float
    head_y: float
    yaw: float
    skin_tone: float
    hair_tone: float
    hair_length: float
    eye_size: float
    smile: float
    bg_hue: float
    bg_light: float
    bg_gradient: float
    eye_hue: float

    def as_dict(self) -> dict:
        return asdict(self)


def _rng(split: str, index: int) -> np.random.Generator:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}. Got: {split!r}")
    # a separate stream per split: test faces are never among the training faces
    return np.random.default_rng([int(index), SPLITS[split], 20211])


def sample_attributes(split: str, index: int) -> FaceAttributes:
    r = _rng(split, index)
    return FaceAttributes(
        head_w=float(r.uniform(0.46, 0.62)), head_h=float(r.uniform(0.56, 0.72)),
        head_x=float(r.uniform(-0.07, 0.07)), head_y=float(r.uniform(-0.03, 0.07)),
        yaw=float(r.uniform(-1, 1)), skin_tone=float(r.uniform(0, 1)), hair_tone=float(r.uniform(0, 1)),
        hair_length=float(r.uniform(0, 1)), eye_size=float(r.uniform(0.7, 1.35)), smile=float(r.uniform(-1, 1)),
        bg_hue=float(r.uniform(0, 1)), bg_light=float(r.uniform(0.35, 0.85)), bg_gradient=float(r.uniform(-1, 1)),
        eye_hue=float(r.uniform(0, 1)),
    )


def _palette(table: np.ndarray, t: float) -> np.ndarray:
    pos = t * (len(table) - 1)
    i = min(int(pos), len(table) - 2)
    return table[i] * (1 - (pos - i)) + table[i + 1] * (pos - i)


def _rgb(c) -> tuple:
    return tuple(int(round(min(max(v, 0), 255))) for v in c)


def _saturate(c, amount: float) -> np.ndarray:
    h, l, s = colorsys.rgb_to_hls(*(np.asarray(c) / 255.0))
    return np.array(colorsys.hls_to_rgb(h, l, min(1.0, s * amount))) * 255


class _Canvas:
    """The supersampled drawing of one face and its layout (centre, half-sizes, yaw shift, colours)."""

    def __init__(self, a: FaceAttributes, size: int, toon: bool):
        self.toon = toon
        self.S = S = size * SUPERSAMPLE
        bg_top = np.array(colorsys.hls_to_rgb(a.bg_hue, a.bg_light, 0.45)) * 255
        bg_bottom = bg_top * (1 + 0.35 * a.bg_gradient)
        if toon:
            bg = np.broadcast_to(_saturate(bg_top, 1.6), (S, S, 3)).copy()
        else:
            ramp = np.linspace(0, 1, S)[:, None, None]
            bg = np.broadcast_to(bg_top * (1 - ramp) + bg_bottom * ramp, (S, S, 3)).copy()
        self.img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
        self.d = ImageDraw.Draw(self.img)
        self.skin, self.hair = _palette(SKIN_TONES, a.skin_tone), _palette(HAIR_TONES, a.hair_tone)
        if toon:
            self.skin, self.hair = _saturate(self.skin, 1.5), _saturate(self.hair, 1.6)
        self.outline = (20, 15, 15) if toon else None
        self.ow = int(round(S * (0.022 if toon else 0.0)))
        self.cx, self.cy = S * (0.5 + a.head_x), S * (0.52 + a.head_y)
        self.hw, self.hh = S * a.head_w / 2, S * a.head_h / 2
        self.shift = a.yaw * 0.16 * self.hw  # features slide towards the side the face turns to

    def ell(self, x, y, rx, ry, fill, line=None, width=0):
        self.d.ellipse([x - rx, y - ry, x + rx, y + ry], fill=fill, outline=line, width=width)


def _hair_and_head(c: _Canvas, a: FaceAttributes) -> None:
    cx, cy, hw, hh = c.cx, c.cy, c.hw, c.hh
    # hair behind the head (long hair hangs down the sides)
    hair_drop = hh * (0.15 + 0.95 * a.hair_length)
    c.d.rounded_rectangle([cx - hw * 1.12, cy - hh * 1.08, cx + hw * 1.12, cy + hair_drop], radius=hw * 0.9,
                          fill=_rgb(c.hair), outline=c.outline, width=c.ow)
    # ears, the far one partly hidden when the head turns
    for side in (-1, 1):
        ex = cx + side * hw * (0.98 - 0.12 * side * a.yaw)
        c.ell(ex, cy + hh * 0.05, hw * 0.16, hh * 0.16, _rgb(c.skin * 0.92), c.outline, c.ow)
    c.ell(cx, cy, hw, hh, _rgb(c.skin), c.outline, c.ow)
    # fringe: the top of the head covered by hair
    c.d.chord([cx - hw * 1.04, cy - hh * 1.1, cx + hw * 1.04, cy + hh * 0.25], 180, 360, fill=_rgb(c.hair),
              outline=c.outline, width=c.ow)


def _shading(c: _Canvas) -> None:
    """Soft shading (photo style): darker towards the jaw and the far side."""
    S, cx, cy, hw, hh = c.S, c.cx, c.cy, c.hw, c.hh
    shade = Image.new("L", (S, S), 0)
    ImageDraw.Draw(shade).ellipse([cx - hw + c.shift * 0.8, cy - hh * 0.2, cx + hw + c.shift * 0.8, cy + hh * 1.25],
                                  fill=70)
    shade = shade.filter(ImageFilter.GaussianBlur(S * 0.05))
    mask = Image.new("L", (S, S), 0)
    ImageDraw.Draw(mask).ellipse([cx - hw, cy - hh * 0.02, cx + hw, cy + hh], fill=255)
    dark = Image.new("RGB", (S, S), _rgb(c.skin * 0.72))
    shade = Image.fromarray((np.asarray(shade, np.float64) * np.asarray(mask, np.float64) / 255).astype(np.uint8))
    c.img = Image.composite(dark, c.img, shade)
    c.d = ImageDraw.Draw(c.img)


def _eyes(c: _Canvas, a: FaceAttributes) -> None:
    toon, hw, hh, shift = c.toon, c.hw, c.hh, c.shift
    eye_y = c.cy - hh * 0.08
    eye_dx = hw * 0.42
    er = hw * 0.15 * a.eye_size * (1.45 if toon else 1.0)
    iris = np.array(colorsys.hls_to_rgb(a.eye_hue, 0.35, 0.6)) * 255
    for side in (-1, 1):
        near = 1 + 0.12 * side * a.yaw  # the eye on the turning side looks bigger
        ex = c.cx + shift + side * eye_dx * (1 - 0.25 * abs(a.yaw) * (side * a.yaw < 0))
        rx, ry = er * near, er * 0.8 * near
        c.ell(ex, eye_y, rx, ry, (250, 250, 250), c.outline, max(c.ow // 2, 1) if toon else 0)
        c.ell(ex + shift * 0.35, eye_y, rx * 0.55, ry * 0.7, _rgb(iris))
        c.ell(ex + shift * 0.4, eye_y, rx * 0.25, ry * 0.32, (10, 10, 10))
        if toon:
            c.ell(ex + shift * 0.4 - rx * 0.2, eye_y - ry * 0.25, rx * 0.12, ry * 0.12, (255, 255, 255))
        by = eye_y - ry - hh * 0.1
        c.d.line([ex - rx, by + hh * 0.02, ex + rx, by], fill=_rgb(c.hair * 0.8),
                 width=max(int(c.S * (0.022 if toon else 0.016)), 1))


def _nose_and_mouth(c: _Canvas, a: FaceAttributes) -> None:
    toon, cx, cy, hw, hh, shift = c.toon, c.cx, c.cy, c.hw, c.hh, c.shift
    nx, ny = cx + shift * 1.5, cy + hh * 0.18
    c.d.line([nx, ny - hh * 0.12, nx + hw * 0.05 * (1 if a.yaw >= 0 else -1), ny, nx - hw * 0.02, ny + hh * 0.02],
             fill=_rgb(c.skin * (0.5 if toon else 0.7)), width=max(int(c.S * 0.012), 1))
    # mouth: a parabola whose curvature is the smile
    mx, my, mw = cx + shift * 1.2, cy + hh * 0.48, hw * 0.42
    pts = []
    for k in range(21):
        u = -1 + k / 10
        pts.append((mx + u * mw, my + a.smile * hh * 0.14 * (1 - u * u) - a.smile * hh * 0.05))
    lip = (120, 30, 40) if not toon else (30, 10, 10)
    c.d.line(pts, fill=lip, width=max(int(c.S * (0.03 if toon else 0.022)), 1), joint="curve")
    if toon:  # cheeks
        for side in (-1, 1):
            c.ell(cx + shift + side * hw * 0.55, cy + hh * 0.3, hw * 0.12, hh * 0.06,
                  _rgb(_saturate(c.skin * 0.9, 2.0) * [1.1, 0.8, 0.8]))


def render(attrs: FaceAttributes, size: int = 64, style: str = "photo", noise_seed: int | None = None) -> np.ndarray:
    """[size, size, 3] uint8 image of a face with these attributes, drawn at SUPERSAMPLE x size and reduced."""
    if style not in ("photo", "toon"):
        raise ValueError(f"style must be 'photo' or 'toon'. Got: {style!r}")
    toon = style == "toon"
    canvas = _Canvas(attrs, size, toon)
    _hair_and_head(canvas, attrs)
    if not toon:
        _shading(canvas)
    _eyes(canvas, attrs)
    _nose_and_mouth(canvas, attrs)
    arr = np.asarray(canvas.img.resize((size, size), Image.Resampling.BOX), dtype=np.float64)
    if not toon:  # fine sensor-like texture
        arr = arr + np.random.default_rng(noise_seed if noise_seed is not None else 0).normal(0, 2.0, arr.shape)
    return np.clip(np.round(arr), 0, 255).astype(np.uint8)


def render_face(split: str, index: int, size: int = 64, style: str = "photo") -> tuple[np.ndarray, FaceAttributes]:
    """The face number ``index`` of a split: (uint8 [size, size, 3], its attributes)."""
    attrs = sample_attributes(split, index)
    return render(attrs, size=size, style=style, noise_seed=index * 2 + SPLITS[split]), attrs


def render_batch(split: str, indices, size: int = 64, style: str = "photo") -> np.ndarray:
    """uint8 [N, size, size, 3]."""
    return np.stack([render_face(split, int(i), size, style)[0] for i in indices])


def attribute_names() -> list[str]:
    return [f for f in FaceAttributes.__dataclass_fields__]

