"""A fast loader for data sets that fit in memory (CIFAR-10 is 150 MB as uint8).

The original course decodes a JPEG and runs ``ToTensor`` for every image of every epoch.
:class:`TensorLoader` instead keeps the decoded images as one uint8 tensor (on the CPU or the
GPU), and per batch only converts to float, normalises and (optionally) augments.
:class:`ShardedTensorLoader` does the same on this process's shard under torchrun, and
:func:`safe_num_workers` says how many worker processes a ``DataLoader`` may use.
"""

from __future__ import annotations

import math
import os
import sys

import torch
import torch.nn.functional as F

from course_utils.distributed import train_sampler
from course_utils.i18n import tr


class TensorLoader:
    """Iterate ``(images float (B, 3, H, W), labels int64 (B,))`` batches from uint8 tensors.

    Args:
        images: uint8 tensor ``(N, 3, H, W)`` (see :func:`course_utils.data.as_tensors`).
        labels: int64 tensor ``(N,)``.
        batch_size: images per batch.
        shuffle: new random order every epoch.
        normalize: ``None`` → scale to 0–1 like ``ToTensor``; or ``(mean, std)``.
        augment: random horizontal flip + random crop with 4-pixel reflect padding.
        drop_last: drop the last, smaller batch.
        device: where batches are produced (move ``images`` there first for a GPU-resident run).

    >>> import torch
    >>> x = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    >>> [b[0].shape[0] for b in TensorLoader(x, torch.arange(10), batch_size=4)]
    [4, 4, 2]
    """

    def __init__(self, images, labels, batch_size=64, shuffle=False, normalize=None,
                 augment=False, drop_last=False, device=None, generator=None):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(tr(f"images must be uint8 (N, C, H, W); got {images.dtype} "
                                f"{tuple(images.shape)}."))
        if len(images) != len(labels):
            raise ValueError(tr(f"{len(images)} images but {len(labels)} labels."))
        self.device = torch.device(device) if device is not None else images.device
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.drop_last, self.generator = drop_last, generator
        self.dataset = self.images  # so len(loader.dataset) works as with a DataLoader
        if normalize is None:
            self.mean, self.std = None, None
        else:
            shape = (1, -1, 1, 1)
            self.mean = torch.tensor(normalize[0], device=self.device).view(shape) * 255
            self.std = torch.tensor(normalize[1], device=self.device).view(shape) * 255

    def __len__(self) -> int:
        n, b = len(self.images), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self):
        n = len(self.images)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).to(self.device)
        else:
            order = torch.arange(n, device=self.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.images[idx].float()
            if self.augment:
                x = random_flip_crop(x)
            x = x / 255 if self.mean is None else (x - self.mean) / self.std
            yield x, self.labels[idx]


def random_flip_crop(x: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Random horizontal flip of half the batch, then a random ``pad``-pixel shift with
    reflect padding (the batch shares one shift per call, a cheap whole-batch crop).

    ``x``: float ``(B, C, H, W)`` → same shape.
    """
    flip = torch.rand(x.shape[0], device=x.device) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    h, w = x.shape[-2:]
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy, dx = torch.randint(0, 2 * pad + 1, (2,)).tolist()
    return padded[..., dy:dy + h, dx:dx + w]


class ShardedTensorLoader:
    """:class:`TensorLoader` batches of this process's shard.

    The shard is :func:`course_utils.distributed.train_sampler`'s, so the uint8 pipeline
    shuffles and splits exactly like a ``DataLoader`` with a ``DistributedSampler``.
    ``options``: TensorLoader's ``normalize``, ``augment``, ``drop_last``, ``device``.

    >>> x = torch.zeros(10, 3, 32, 32, dtype=torch.uint8)
    >>> len(ShardedTensorLoader(x, torch.arange(10), batch_size=4))   # 1 process: 10 images
    3
    """

    def __init__(self, images, labels, batch_size: int, *, seed: int = 0, **options):
        device = options.get("device")
        self.images = images.to(device) if device is not None else images
        self.labels = labels.to(self.images.device)
        self.dataset = self.images  # len(loader.dataset): the whole training set
        self.sampler = train_sampler(range(len(labels)), seed)
        self.batch_size, self.options = batch_size, options
        self.drop_last = bool(options.get("drop_last"))

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        shard = torch.tensor(list(self.sampler), device=self.images.device)
        yield from TensorLoader(self.images[shard], self.labels[shard], self.batch_size,
                                shuffle=False, **self.options)


def safe_num_workers() -> int:
    """DataLoader workers that work in a notebook: 0 on Windows and macOS (worker
    processes there re-import the notebook and often fail), else up to 2."""
    if sys.platform in ("win32", "darwin"):
        return 0
    return min(2, os.cpu_count() or 1)
