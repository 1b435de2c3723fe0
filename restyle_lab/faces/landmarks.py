"""Faces and their landmarks from facenet-pytorch's MTCNN, whose P/R/O-net weights ship inside its wheel
(so detection works offline). MTCNN gives five points per face: both eyes (pupil centres), the nose tip
and both mouth corners; the FFHQ recipe needs the eyes and the mouth corners."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .recipe import FacePoints

DETECTOR = "facenet-pytorch MTCNN (thresholds 0.6/0.7/0.7, min face 20 px, photos over 1024 px searched downscaled)"
# MTCNN's image pyramid costs seconds per megapixel on a CPU; its landmark network reads each face at
# 48 x 48 pixels, so a face that is still 20 px or more at this size loses nothing by the downscaling
DETECT_MAX_SIDE = 1024


@dataclass(frozen=True)
class Face:
    box: tuple  # (x0, y0, x1, y1) in image pixels
    score: float
    points: FacePoints

    @property
    def area(self) -> float:
        return max(self.box[2] - self.box[0], 0.0) * max(self.box[3] - self.box[1], 0.0)


_MODELS: dict = {}  # device -> MTCNN, loaded once per process


class FaceDetector:
    """``detect(img)``: every face in an RGB PIL image, largest box first. The networks load on first use."""

    def __init__(self, device="cpu"):
        self.device = str(device)

    def _model(self):
        if self.device not in _MODELS:
            from facenet_pytorch import MTCNN

            _MODELS[self.device] = MTCNN(keep_all=True, device=self.device)
        return _MODELS[self.device]

    def detect(self, img: Image.Image) -> list[Face]:
        img = img.convert("RGB")
        small, scale = img, np.ones(2)
        if max(img.size) > DETECT_MAX_SIDE:
            factor = DETECT_MAX_SIDE / max(img.size)
            small = img.resize((max(1, round(img.width * factor)), max(1, round(img.height * factor))),
                               Image.Resampling.BILINEAR)
            scale = np.array([small.width / img.width, small.height / img.height])
        boxes, scores, points = self._model().detect(small, landmarks=True)
        if boxes is None:
            return []
        faces = [Face(tuple((np.asarray(box, dtype=np.float64).reshape(2, 2) / scale).ravel().tolist()), float(score),
                      FacePoints.from_array(np.asarray(pts, dtype=np.float64)[[0, 1, 3, 4]] / scale))
                 for box, score, pts in zip(boxes, scores, points)]
        return sorted(faces, key=lambda f: -f.area)
