"""Training images and the order they are read in: every rank its own shard of each batch, and a
position that a resumed run continues from.

The order is a pure function of (seed, step): epoch e reads a seeded permutation of the images in
global batches of ``batch_size x accumulate x world_size`` (the last incomplete one dropped, as the
official ``drop_last=True``); micro-batch j of rank r takes slice ``r * accumulate + j`` of it. So a
resumed run, or one on a different number of ranks with the same global batch, reads the same images
for the same step.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..facts.errors import DatasetError
from ..records.data import ImageFolder
from ..records.images import from_uint8


class ArraySource:
    """uint8 [n, H, W, 3] images in memory (or memory-mapped), with optional paired targets."""

    def __init__(self, images, targets=None, name: str = "array"):
        self.images, self.targets, self.name = images, targets, name

    def __len__(self):
        return len(self.images)

    def identity(self) -> dict:
        return {"kind": "array", "name": self.name, "n": len(self)}

    def load(self, indices) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(inputs, targets or None): [B, 3, H, W] in [-1, 1]."""
        rows = np.asarray(indices)
        x = from_uint8(self.images[rows])
        return x, (None if self.targets is None else from_uint8(self.targets[rows]))


class FolderSource:
    """An image folder read at the encoder's input size (PIL bilinear, as the official Resize), decoded
    by a few threads. An unreadable file is replaced by the next readable one (same every time, so the
    order stays a function of the step) and reported once."""

    def __init__(self, root, input_hw: tuple, log=print, threads: int = 4):
        self.folder = ImageFolder(root, input_hw)
        self.log, self.bad = log, set()
        self.pool = ThreadPoolExecutor(max_workers=threads)

    def __len__(self):
        return len(self.folder)

    def identity(self) -> dict:
        names = hashlib.sha256(json.dumps(self.folder.names).encode()).hexdigest()[:16]
        return {"kind": "folder", "root": str(self.folder.root), "n": len(self), "names_sha256": names}

    def _one(self, index: int) -> torch.Tensor:
        for k in range(len(self)):
            i = (index + k) % len(self)
            image, record = self.folder.load(i)
            if image is not None:
                return image
            if i not in self.bad:
                self.bad.add(i)
                self.log(f"skipping unreadable training image {record.name}: {record.status}")
        raise DatasetError(f"{self.folder.root}: no readable image")

    def load(self, indices):
        return torch.stack(list(self.pool.map(self._one, [int(i) for i in indices]))), None


class ShardedOrder:
    """Which images micro-batch j of this rank reads at a step (module docstring)."""

    def __init__(self, n_images: int, batch_size: int, accumulate: int, world_size: int, rank: int, seed: int):
        self.n, self.batch, self.accumulate = n_images, batch_size, accumulate
        self.world, self.rank, self.seed = world_size, rank, seed
        self.global_batch = batch_size * accumulate * world_size
        if n_images < self.global_batch:
            raise DatasetError(f"{n_images} training images are fewer than one global batch of {self.global_batch} "
                               f"(batch_size {batch_size} x accumulate {accumulate} x {world_size} ranks)")
        self.per_epoch = n_images // self.global_batch
        self._epoch, self._perm = None, None

    def position(self, step: int) -> dict:
        """Where ``step`` reads: its epoch and batch within the epoch."""
        return {"epoch": step // self.per_epoch, "batch": step % self.per_epoch, "global_batch": self.global_batch,
                "n_images": self.n}

    def indices(self, step: int, micro: int) -> np.ndarray:
        """Sorted image indices of micro-batch ``micro`` (0..accumulate-1) of this rank at ``step``."""
        epoch, b = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            self._epoch, self._perm = epoch, np.random.default_rng([self.seed, epoch]).permutation(self.n)
        start = b * self.global_batch + (self.rank * self.accumulate + micro) * self.batch
        return np.sort(self._perm[start: start + self.batch])

    def micro_index(self, micro: int) -> int:
        """The global number of this rank's micro-batch ``micro`` (seeds its randomness)."""
        return self.rank * self.accumulate + micro
