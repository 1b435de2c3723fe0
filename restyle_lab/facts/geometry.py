"""Where images live between the generator and the encoder (torch-free, so any layer may import it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Geometry:
    """pool_size: the generator output is average-pooled to this square size (the
    official ``face_pool``, 256). crop_pooled / crop_full: rows kept after / without
    pooling (cars: 32:224 and 64:448). input_hw: the encoder's input (H, W).
    """

    pool_size: int = 256
    input_hw: tuple = (256, 256)
    crop_pooled: tuple | None = None
    crop_full: tuple | None = None

    def __post_init__(self):
        object.__setattr__(self, "input_hw", tuple(self.input_hw))
        for name in ("crop_pooled", "crop_full"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))


CARS_GEOMETRY = Geometry(256, (192, 256), (32, 224), (64, 448))
