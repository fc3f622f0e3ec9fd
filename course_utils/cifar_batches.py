"""The bundled CIFAR-10 sample in the official ``cifar-10-batches-py`` format, so that the
course's own call ``torchvision.datasets.CIFAR10(root=..., train=..., transform=...,
download=...)`` runs on a machine with no network (chapter 5, P14).

The official download unpacks to ``<root>/cifar-10-batches-py/`` holding ``data_batch_1`` …
``data_batch_5``, ``test_batch`` and ``batches.meta``: pickled dicts whose ``"data"`` is an
``(N, 3072)`` uint8 array (the red, green and blue 32×32 planes of each image, one row per
image) and whose ``"labels"`` is a list of ints. torchvision checks every file's md5
against the official ones, so files with other content are refused by the plain class.

* :func:`write_sample_batches` writes the sample (``data/cifar10-sample``: 1,000 train and
  200 test images) in exactly that format into the course cache: ``data_batch_1``,
  ``test_batch``, ``batches.meta``.
* :class:`SampleCIFAR10` is torchvision's ``CIFAR10`` with only its file list and md5s
  swapped for the sample's; torchvision's own loading code does the rest.
* :func:`choose_cifar10` picks the real class when the official files are there or the
  download host answers (a bounded probe, so a machine with no network does not hang), and
  otherwise the sample: ``CIFAR10, root = choose_cifar10()``.
* :func:`full_cifar10_available` tells a notebook's run-size cell whether
  ``course_utils.data.cifar10()`` will give the full set.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
from torchvision.datasets import CIFAR10

from course_utils import download as dl
from course_utils import settings
from course_utils.files import atomic_write
from course_utils.i18n import N_, tr
from course_utils.sources import _say

#: Where the sample's batches go, below the course cache (never inside the repository).
SAMPLE_ROOT_NAME = "cifar10-sample-batches"
#: The sample's files, by split, as torchvision's ``train_list``/``test_list`` name them.
FILES = {"train": "data_batch_1", "test": "test_batch"}
META = "batches.meta"


def sample_root() -> Path:
    """``<course cache>/cifar10-sample-batches``: the ``root`` to pass for the sample."""
    return settings.cache_dir() / SAMPLE_ROOT_NAME


def _batch(split: str) -> dict:
    """One split of the bundled sample as the official pickle's dict."""
    from course_utils import data

    folder = data.CIFAR10Folder(data.CIFAR10_SAMPLE / split)
    n = len(folder)
    return {
        "batch_label": f"course sample: {split} ({n} images)",
        "labels": [int(t) for t in folder.targets],
        # (N, 32, 32, 3) HWC -> (N, 3, 32, 32) CHW -> one row of 3072 per image, as the original
        "data": np.ascontiguousarray(folder.data.transpose(0, 3, 1, 2).reshape(n, 3 * 32 * 32)),
        "filenames": [f"{Path(p).parent.name}_{Path(p).name}" for p in folder.files],
    }


@functools.lru_cache(maxsize=1)
def sample_files() -> dict[str, bytes]:
    """``{file name: bytes}`` of the three files the sample is written as (computed once)."""
    from course_utils import data

    files = {FILES[split]: pickle.dumps(_batch(split), protocol=4) for split in FILES}
    files[META] = pickle.dumps({"label_names": list(data.CIFAR10_CLASSES),
                                "num_cases_per_batch": None, "num_vis": 3072}, protocol=4)
    return files


def sample_md5s() -> dict[str, str]:
    """md5 of each of the sample's files — what :class:`SampleCIFAR10` checks them against."""
    return {name: hashlib.md5(blob).hexdigest() for name, blob in sample_files().items()}


def write_sample_batches(root: str | os.PathLike | None = None) -> Path:
    """Write the sample as ``<root>/cifar-10-batches-py/{data_batch_1,test_batch,batches.meta}``
    (root defaults to :func:`sample_root`) and return ``root``.

    A file that is already there with the right md5 is kept; a missing one is written, a
    damaged one reported in one line and rewritten — each through a temporary file of this
    process, so a reader never sees half a file and two processes writing at once end with
    one good copy.

    >>> root = write_sample_batches()          # doctest: +SKIP
    >>> SampleCIFAR10(root, train=False)[0]    # doctest: +SKIP
    (<PIL.Image.Image image mode=RGB size=32x32 ...>, 0)
    """
    root = Path(root) if root is not None else sample_root()
    folder = root / CIFAR10.base_folder
    folder.mkdir(parents=True, exist_ok=True)
    md5s = sample_md5s()
    for name, blob in sample_files().items():
        path = folder / name
        if path.is_file():
            if dl.file_digest(path) == md5s[name]:
                continue
            print("[course_utils] " + tr(f"{path} is damaged or out of date (md5 differs); "
                                         "writing it again."))
        atomic_write(path, lambda f, blob=blob: f.write(blob))
    return root


class SampleCIFAR10(CIFAR10):
    """torchvision's ``CIFAR10`` reading the course's sample batches.

    Only the file list and the md5s differ from the parent class (the sample has one train
    batch and its own checksums); opening, checking, unpickling and indexing are
    torchvision's own code. Items are ``(PIL image 32×32 RGB, int label)``, ``.data`` is
    ``(N, 32, 32, 3)`` uint8, ``.classes`` the ten names.

    ``download=True`` writes the sample's files when they are missing (there is nothing to
    fetch). Without them it raises torchvision's ``RuntimeError``.

    >>> ds = SampleCIFAR10(write_sample_batches(), train=False)   # doctest: +SKIP
    >>> len(ds), ds.classes[ds[0][1]]                             # doctest: +SKIP
    (200, 'airplane')
    """

    def __init__(self, root, train: bool = True, transform=None, target_transform=None,
                 download: bool = False) -> None:
        md5 = sample_md5s()
        self.train_list = [[FILES["train"], md5[FILES["train"]]]]
        self.test_list = [[FILES["test"], md5[FILES["test"]]]]
        self.meta = {**CIFAR10.meta, "md5": md5[META]}
        if download:
            write_sample_batches(root)
        super().__init__(root, train=train, transform=transform,
                         target_transform=target_transform, download=False)


def official_files_present(root: str | os.PathLike) -> bool:
    """True when ``root/cifar-10-batches-py`` holds every official file (not checked here:
    torchvision checks their md5s when it opens them)."""
    folder = Path(root) / CIFAR10.base_folder
    names = [name for name, _ in CIFAR10.train_list + CIFAR10.test_list]
    names.append(CIFAR10.meta["filename"])
    return all((folder / name).is_file() for name in names)


def full_cifar10_available() -> bool:
    """True when ``course_utils.data.cifar10()`` (with downloads allowed) will give the full
    CIFAR-10 rather than the bundled sample: the official files in the cache, a
    ``COURSE_DATA_DIR`` holding ``cifar10-jpg/`` (or its ``.tar.gz``), or — unless
    ``COURSE_OFFLINE=1`` — a download server that answers (a check of at most 3 seconds).

    The notebooks' "How big is this run" cells use it to size a run for the data it will get.
    """
    if official_files_present(settings.cache_dir()):
        return True
    base = settings.data_dir()
    if base is not None and ((base / "cifar10-jpg" / "train").is_dir()
                             or (base / "cifar10-jpg.tar.gz").is_file()):
        return True
    return not settings.offline() and dl.host_reachable(CIFAR10.url)


def choose_cifar10(root: str | os.PathLike | None = None, download: bool = True,
                   verbose: bool = True) -> tuple[type[CIFAR10], Path]:
    """``(dataset class, root)`` for the course's ``CIFAR10(root=root, ...)`` call.

    * the official files under ``root`` (default: the course cache) → torchvision's
      ``CIFAR10`` and ``root``;
    * else, when ``download`` and the download host answers within 3 seconds (never with
      ``COURSE_OFFLINE=1``) → torchvision's ``CIFAR10`` and ``root`` (it downloads there);
    * else → :class:`SampleCIFAR10` and the sample's root (its files written if needed).

    Prints one line saying which (unless ``verbose=False``).
    """
    root = Path(root) if root is not None else settings.cache_dir()
    if official_files_present(root):
        _say(verbose, f"official CIFAR-10 files in {root / CIFAR10.base_folder}")
        return CIFAR10, root
    if download and dl.host_reachable(CIFAR10.url):
        _say(verbose, f"CIFAR-10 will be downloaded into {root} (170 MB, once)")
        return CIFAR10, root
    why = ("download=False" if not download else
           "COURSE_OFFLINE=1" if settings.offline() else N_("no network"))
    sample = write_sample_batches()
    _say(verbose, f"{why}: the course's sample (1,000 train / 200 test images) in the official "
                  f"format, {sample / CIFAR10.base_folder}")
    return SampleCIFAR10, sample
