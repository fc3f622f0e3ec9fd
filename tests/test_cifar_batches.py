"""course_utils.cifar_batches: the bundled CIFAR-10 sample in the official pickle format, read
by torchvision's own CIFAR10 code (chapter 5 runs the course's call offline)."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest
import torch
import torchvision
from torch.utils.data import DataLoader

from course_utils import cifar_batches as cb
from course_utils import data

TV = torchvision.datasets.CIFAR10


@pytest.fixture
def sample_folders():
    return {split: data.CIFAR10Folder(data.CIFAR10_SAMPLE / split) for split in ("train", "test")}


def test_files_have_the_official_layout_and_format(cache_dir, sample_folders):
    root = cb.write_sample_batches()
    assert root == cache_dir / cb.SAMPLE_ROOT_NAME
    folder = root / "cifar-10-batches-py"
    assert sorted(p.name for p in folder.iterdir()) == ["batches.meta", "data_batch_1",
                                                         "test_batch"]
    for split, name in cb.FILES.items():
        with open(folder / name, "rb") as f:
            entry = pickle.load(f, encoding="latin1")  # as torchvision opens it
        rows = entry["data"]
        assert rows.dtype == np.uint8 and rows.shape == (len(sample_folders[split]), 3072)
        # row = red plane, then green, then blue, each 32×32 row-major
        first = sample_folders[split].data[0]
        assert np.array_equal(rows[0, :1024].reshape(32, 32), first[..., 0])
        assert np.array_equal(rows[0, 2048:].reshape(32, 32), first[..., 2])
        assert entry["labels"] == list(sample_folders[split].targets)
    with open(folder / "batches.meta", "rb") as f:
        assert pickle.load(f, encoding="latin1")["label_names"] == data.CIFAR10_CLASSES


def test_torchvision_reads_the_sample_through_the_subclass(cache_dir, sample_folders):
    root = cb.write_sample_batches()
    train = cb.SampleCIFAR10(root=root, train=True, transform=torchvision.transforms.ToTensor())
    test = cb.SampleCIFAR10(root=root, train=False)
    assert isinstance(train, TV) and (len(train), len(test)) == (1000, 200)
    assert np.array_equal(test.data, sample_folders["test"].data)
    assert test.targets == sample_folders["test"].targets and test.classes == data.CIFAR10_CLASSES
    img, target = test[25]
    assert img.mode == "RGB" and img.size == (32, 32) and test.classes[target] == "automobile"
    x, y = train[999]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == 9
    imgs, targets = next(iter(DataLoader(train, batch_size=64, shuffle=True)))
    assert imgs.shape == (64, 3, 32, 32) and targets.shape == (64,)


def test_the_plain_class_refuses_the_sample_because_of_its_md5s(cache_dir):
    root = cb.write_sample_batches()
    with pytest.raises(RuntimeError, match="not found or corrupted"):
        TV(root=root, train=False)


def test_a_damaged_file_is_refused_then_repaired(cache_dir):
    root = cb.write_sample_batches()
    batch = root / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(batch.read_bytes()[:1000])  # a cut-off copy
    with pytest.raises(RuntimeError, match="not found or corrupted"):
        cb.SampleCIFAR10(root=root, train=False)
    assert len(cb.SampleCIFAR10(root=root, train=False, download=True)) == 200
    assert not list(batch.parent.glob("*.part")), "a temporary file was left behind"


def test_choose_without_network_gives_the_sample_fast(cache_dir, capsys):
    t0 = time.perf_counter()
    cls, root = cb.choose_cifar10()
    assert time.perf_counter() - t0 < 10  # the probe is bounded: no hang without a network
    assert cls is cb.SampleCIFAR10 and root == cb.sample_root()
    assert "no network" in capsys.readouterr().out
    assert len(cls(root=root, train=False, transform=None, download=True)) == 200


def test_choose_prefers_official_files(tmp_path, cache_dir, capsys):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, _ in TV.train_list + TV.test_list:
        (folder / name).write_bytes(b"x")
    (folder / TV.meta["filename"]).write_bytes(b"x")
    assert cb.choose_cifar10(tmp_path) == (TV, tmp_path)
    assert "official" in capsys.readouterr().out
    (folder / "data_batch_5").unlink()  # incomplete: not taken for the official set
    assert cb.choose_cifar10(tmp_path)[0] is cb.SampleCIFAR10


def test_choose_the_real_download_when_the_host_answers(tmp_path, cache_dir, local_server,
                                                        monkeypatch):
    _, base = local_server
    monkeypatch.setattr(TV, "url", f"{base}/cifar-10-python.tar.gz")
    assert cb.choose_cifar10(tmp_path) == (TV, tmp_path)
    assert cb.choose_cifar10(tmp_path, download=False)[0] is cb.SampleCIFAR10
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    assert cb.choose_cifar10(tmp_path)[0] is cb.SampleCIFAR10
