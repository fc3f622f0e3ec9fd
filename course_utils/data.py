"""Data sets for every chapter, offline first.

``cifar10()`` looks for CIFAR-10 in this order and prints one line saying which it used:

1. the official ``cifar-10-batches-py`` folder under ``root`` (default: the course cache;
   a ``root`` of the learner's is only read: a damaged copy there raises
   :class:`course_utils.download.DamagedInputError` and is left as it is);
2. torchvision's official download (bounded in time, md5-checked) when online;
3. an image-folder copy ``cifar10-jpg/{train,test}/<class>/*.jpg`` under ``COURSE_DATA_DIR``
   (or the archive ``cifar10-jpg.tar.gz`` there, unpacked once into the cache);
4. the real sample bundled in ``data/cifar10-sample`` (100 train / 20 test images a class).

Whichever source is used, the result behaves like ``torchvision.datasets.CIFAR10``: items are
``(PIL image, int label)``, ``.classes`` is in the official order, ``.data`` is an
``(N, 32, 32, 3)`` uint8 array and ``.targets`` a list of ints.

The ants-and-bees set (``hymenoptera``, ``make_label_layout``) lives in
:mod:`course_utils.ants_bees` and is importable from here too.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torch.utils.data import Dataset, Subset
from torchvision.datasets import VisionDataset

from course_utils import caches, settings
from course_utils import download as dl
from course_utils.ants_bees import (  # noqa: F401  (the ants/bees source, importable from here)
    HYMENOPTERA_SAMPLE,
    HYMENOPTERA_TREE_SHA256,
    HYMENOPTERA_URL,
    hymenoptera,
    make_label_layout,
)
from course_utils.i18n import N_, tr
from course_utils.images import PHOTO_SUFFIXES, demo_image, open_rgb, photo_files, to_rgb
from course_utils.sources import _data_folder, _root_folder, _say

__all__ = [
    "cifar10", "CIFAR10Folder", "CIFAR10_CLASSES", "CIFAR10_MEAN", "CIFAR10_STD",
    "CIFAR10_SAMPLE", "as_tensors",
    "spread_subset", "spread_indices", "hymenoptera", "HYMENOPTERA_SAMPLE",
    "make_label_layout",
    # image-file helpers, defined in course_utils.images and used from here by the chapters
    "PHOTO_SUFFIXES", "photo_files", "open_rgb", "to_rgb", "demo_image",
]  # fmt: skip

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
#: Per-channel mean/std of the CIFAR-10 training set (RGB, on the 0–1 scale).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR10_SAMPLE = settings.BUNDLED_DATA / "cifar10-sample"

_FULL_SET_HINT = N_(
    "For the full set: run once online (torchvision downloads it), or set COURSE_DATA_DIR to a "
    "folder holding cifar10-jpg/ or cifar10-jpg.tar.gz."
)


# --------------------------------------------------------------------------- CIFAR-10
def cifar10(
    train: bool = True,
    transform=None,
    target_transform=None,
    root: str | os.PathLike | None = None,
    download: bool = True,
    verbose: bool = True,
    data_dir: str | os.PathLike | None = None,
) -> Dataset:
    """CIFAR-10 from the best source available (see the module docstring).

    Wraps ``torchvision.datasets.CIFAR10(root, train, transform, download=True)``.
    ``data_dir`` is the folder holding ``cifar10-jpg/`` (or its ``.tar.gz``); None means
    ``COURSE_DATA_DIR`` (or no such folder when that is unset).

    Example:
        >>> ds = cifar10(train=False, transform=torchvision.transforms.ToTensor())
        >>> img, label = ds[0]            # img: (3, 32, 32) float in [0, 1]
        >>> ds.classes[label]
    """
    split = N_("train") if train else N_("test")
    root, mine = _root_folder(root)
    tv = torchvision.datasets.CIFAR10
    kwargs = dict(transform=transform, target_transform=target_transform)
    official = root / tv.base_folder
    if official.is_dir():
        try:
            ds = tv(str(root), train=train, download=False, **kwargs)
        except RuntimeError:  # torchvision: "Dataset not found or corrupted"
            if mine:  # the learner's folder: reported, never removed
                raise dl.DamagedInputError(tr(
                    f"{official} is damaged or incomplete (a file is missing or fails its md5); "
                    "it was left as it is. Copy it again (all of it) or move it away, then run "
                    "again.")) from None
            print("[course_utils] " + tr(f"{official} is damaged or incomplete (a file fails "
                                         "its md5); it was removed and is made again."))
            dl.discard(official)
        else:
            ds.source = "official"
            _say(verbose, f"CIFAR-10 {split}: official files in {official} ({len(ds):,})")
            return ds
    why = "COURSE_OFFLINE=1" if settings.offline() else "download=False"
    if download and not settings.offline():
        try:
            archive = _learners_archive(root / tv.filename, tv.tgz_md5) if mine else None
            fresh = archive is None  # the course downloads it, and owns that file
            if fresh:
                archive = dl.download(tv.url, root / tv.filename, md5=tv.tgz_md5)
            dl.unpack_folder(archive, tv.base_folder, root, downloaded=fresh)
            ds = tv(str(root), train=train, download=False, **kwargs)
            ds.source = "download"
            _say(verbose, f"CIFAR-10 {split}: downloaded to {root} ({len(ds):,} images)")
            return ds
        except (dl.OfflineError, dl.ChecksumError) as exc:
            why = N_(f"no download ({exc})")
    folder = _cifar10_image_folder(_data_folder(data_dir))
    if folder is not None:
        ds = CIFAR10Folder(folder / split, **kwargs)
        ds.source = "image-folder"
        _say(verbose, f"CIFAR-10 {split}: image folder {folder / split} ({len(ds):,} images)")
        return ds
    ds = CIFAR10Folder(CIFAR10_SAMPLE / split, **kwargs)
    ds.source = "sample"
    _say(verbose, f"CIFAR-10 {split}: bundled sample, {len(ds):,} images [{why}]. {_FULL_SET_HINT}")
    return ds


def _learners_archive(archive: Path, md5: str) -> Path | None:
    """The official archive already in the learner's ``root`` (None when there is none),
    checked; a damaged one raises :class:`course_utils.download.DamagedInputError` and is left
    as it is (:func:`course_utils.download.download` would replace it)."""
    if not archive.is_file():
        return None
    if (got := dl.file_digest(archive)) != md5:
        raise dl.DamagedInputError(tr(f"{archive} is damaged or incomplete (md5 {got}, "
                                      f"expected {md5}); it was left as it is. Copy it again "
                                      "(the whole file) or move it away, then run again."))
    return archive


def _cifar10_image_folder(base: Path | None) -> Path | None:
    """``base/cifar10-jpg`` (unpacking ``base/cifar10-jpg.tar.gz`` into the cache once).

    ``base`` is the learner's folder: its files are only read, never changed or deleted (a
    damaged archive raises :class:`course_utils.download.DamagedInputError`)."""
    if base is None:
        return None
    if (base / "cifar10-jpg" / "train").is_dir():
        return base / "cifar10-jpg"
    archive = base / "cifar10-jpg.tar.gz"
    if not archive.is_file():
        return None
    target = settings.cache_dir() / "cifar10-jpg"
    damage = dl.check_unpacked(target) if target.is_dir() else "missing"
    if damage is None and not (target / "test").is_dir():
        damage = N_("no test/ folder")
    if damage is not None:
        _unpack_again(archive, target, damage, own=target.parent.resolve() == base.resolve())
    return target


def _unpack_again(archive: Path, target: Path, damage: str, own: bool) -> None:
    """Make the cache's copy ``target`` of the learner's ``archive`` (again, when ``damage``d).
    When the learner's folder is the cache itself (``own``), a damaged copy is theirs:
    reported, never removed."""
    if damage == "missing":
        print("[course_utils] " + tr(f"unpacking {archive} into {target.parent} (once) …"))
    elif own:
        raise dl.DamagedInputError(tr(f"{target} is damaged ({damage}); it was left as it "
                                      "is. Copy it again (all of it) or move it away, then run "
                                      "again."))
    else:
        print("[course_utils] " + tr(f"the unpacked copy {target} is damaged ({damage}); "
                                     f"unpacking {archive} again …"))
        dl.discard(target)
    dl.unpack_folder(archive, "cifar10-jpg", target.parent)


class CIFAR10Folder(VisionDataset):
    """CIFAR-10 stored as ``<split>/<class>/*.jpg``, shaped like ``torchvision`` CIFAR10.

    All images are decoded once into ``.data`` (uint8, shape ``(N, 32, 32, 3)``); the decoded
    array is cached under the course cache so a second load is instant.

    Raises ``FileNotFoundError`` if the folder is missing and ``ValueError`` if its class
    folders are not the ten CIFAR-10 classes.
    """

    def __init__(self, split_dir: str | os.PathLike, transform=None, target_transform=None):
        super().__init__(str(split_dir), transform=transform, target_transform=target_transform)
        split_dir = Path(split_dir)
        if not split_dir.is_dir():
            raise FileNotFoundError(tr(f"CIFAR-10 folder {split_dir} does not exist."))
        found = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
        if found != sorted(CIFAR10_CLASSES):
            raise ValueError(tr(
                f"{split_dir} should hold the ten CIFAR-10 class folders {CIFAR10_CLASSES}, "
                f"but holds {found}."
            ))
        self.classes = list(CIFAR10_CLASSES)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        files = [
            (p, self.class_to_idx[c])
            for c in self.classes
            for p in sorted((split_dir / c).iterdir())
            if p.suffix.lower() in PHOTO_SUFFIXES
        ]
        if not files:
            raise ValueError(tr(f"the class folders in {split_dir} hold no photos "
                                f"({', '.join(PHOTO_SUFFIXES)})."))
        self.files = [p for p, _ in files]
        self.targets = [t for _, t in files]
        self.data = _decode_cached(self.files)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        img = Image.fromarray(self.data[index])
        target = self.targets[index]
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target


def _decode_cached(files: list[Path]) -> np.ndarray:
    """The images of ``files`` decoded into ``(N, 32, 32, 3)`` uint8, cached under the
    course cache as ``decoded-<key>.npy`` (key: the files' paths, sizes and times)."""
    stamp = "\n".join(f"{p.resolve()}:{(st := p.stat()).st_size}:{st.st_mtime_ns}"
                      for p in files)
    cache = settings.cache_dir() / f"decoded-{hashlib.sha1(stamp.encode()).hexdigest()[:16]}.npy"
    arr = caches.read_array(cache, (len(files), 32, 32, 3))
    if arr is None:
        arr = np.stack([_decode_32x32(p) for p in files])
        caches.write_array(cache, arr)
    return arr


def _decode_32x32(path: Path) -> np.ndarray:
    """One CIFAR-10 image as uint8 ``(32, 32, 3)``; ``ValueError`` names a bad file."""
    return np.asarray(open_rgb(path, size=(32, 32), kind="CIFAR-10"))


def as_tensors(dataset, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The data set as ``(images uint8 (N, 3, H, W), labels int64 (N,))``: all of it, or
    ``limit`` items spread evenly over it (see :func:`spread_indices`).

    Works on anything with ``.data`` (N, H, W, 3) and ``.targets``, e.g. ``cifar10()``.
    """
    images = torch.from_numpy(np.ascontiguousarray(dataset.data)).permute(0, 3, 1, 2)
    labels = torch.as_tensor(dataset.targets, dtype=torch.long)
    if limit:
        keep = spread_indices(len(labels), limit)
        images, labels = images[keep], labels[keep]
    return images.contiguous(), labels


def spread_subset(dataset, n: int) -> Dataset:
    """``n`` items evenly spread over ``dataset`` (keeps every class of a sorted folder).

    >>> len(spread_subset(cifar10(train=False), 50))
    50
    """
    if n >= len(dataset):
        return dataset
    return Subset(dataset, spread_indices(len(dataset), n))


def spread_indices(total: int, n: int) -> list[int]:
    """``n`` indices evenly spread over ``range(total)`` (all of them if ``n >= total``)."""
    if n >= total:
        return list(range(total))
    step = total / n
    return [int(i * step) for i in range(n)]
