"""Identity similarity for faces with facenet-pytorch (not the paper's CurricularFace).

MTCNN aligns each face to 160x160; InceptionResnetV1 (VGGFace2) embeds it; the value is
the cosine similarity of the two embeddings. Images where MTCNN finds no face give NaN
(recorded as skipped), as the official script skips them.
"""

from __future__ import annotations

import contextlib
import io

import torch
from PIL import Image

from ..facts.metric_names import IDENTITY
from ..records.images import to_uint8
from .weights import FACENET_FILE, MetricUnavailable, facenet_weight_path, missing_message

NAME = IDENTITY


class FaceIdentity:
    def __init__(self, device="cpu"):
        from facenet_pytorch import MTCNN, InceptionResnetV1

        path = facenet_weight_path()
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                self.net = InceptionResnetV1(pretrained="vggface2").eval().to(device)
        except Exception as err:
            raise MetricUnavailable(NAME, missing_message(FACENET_FILE, path, err)) from None
        self.mtcnn = MTCNN(image_size=160, margin=0, post_process=True, device=device)
        self.device = device

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 512] unit embeddings of [N, 3, H, W] images in [-1, 1]; NaN rows where no face is found."""
        pics = [Image.fromarray(a) for a in to_uint8(images)]
        faces = self.mtcnn(pics)
        out = torch.full((len(pics), 512), float("nan"), dtype=torch.float64)
        found = [i for i, f in enumerate(faces) if f is not None]
        if found:
            batch = torch.stack([faces[i] for i in found]).to(self.device)
            emb = torch.nn.functional.normalize(self.net(batch).double(), dim=1).cpu()
            out[found] = emb
        return out

    def prepare(self, target: torch.Tensor) -> torch.Tensor:
        return self.embed(target)

    def __call__(self, pred: torch.Tensor, target_embedding: torch.Tensor) -> torch.Tensor:
        return (self.embed(pred) * target_embedding).sum(1)
