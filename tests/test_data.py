"""The data layer: every resolution branch of cifar10(), the ants/bees set, the samples."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tarfile
import time
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from _helpers import jpg_copy, snapshot
from PIL import Image

from course_utils import ants_bees, data, download, settings

TV = torchvision.datasets.CIFAR10


# ----------------------------------------------------------------------------- samples
def _names(message: str, *parts: str) -> None:
    """``message`` is one line holding each of ``parts`` (the file or value it is about, and a
    key word of what is wrong or what to do): checked by behaviour, not by wording."""
    assert "\n" not in message.strip(), message
    for part in parts:
        assert part in message, (part, message)


def _said(out: str, *parts: str) -> None:
    """``out`` is exactly one ``[course_utils] …`` line holding each of ``parts``."""
    assert out.startswith("[course_utils] ") and out.endswith("\n") and out.count("\n") == 1, out
    _names(out, *parts)


def test_cifar10_sample_has_every_class_in_official_order():
    for split, per_class in (("train", 100), ("test", 20)):
        folders = sorted(p.name for p in (data.CIFAR10_SAMPLE / split).iterdir())
        assert folders == data.CIFAR10_CLASSES  # folder names sort into label order
        for name in folders:
            files = list((data.CIFAR10_SAMPLE / split / name).glob("*.jpg"))
            assert len(files) == per_class, (split, name)
            with Image.open(files[0]) as img:
                assert img.size == (32, 32) and img.mode == "RGB"


def test_hymenoptera_sample_keeps_the_course_photo_and_the_placeholder():
    ants = data.HYMENOPTERA_SAMPLE / "train" / "ants"
    assert np.asarray(Image.open(ants / "0013035.jpg")).shape == (512, 768, 3)
    with Image.open(ants / "imageNotFound.gif") as gif:
        assert gif.format == "GIF" and gif.mode == "P"
    for split in ("train", "val"):
        for label in ("ants", "bees"):
            assert len(data.photo_files(data.HYMENOPTERA_SAMPLE / split / label)) >= 8


def test_bundled_data_stays_small():
    total = sum(p.stat().st_size for p in settings.BUNDLED_DATA.rglob("*") if p.is_file())
    assert total <= 8 * 1024 * 1024, f"data/ holds {total / 1e6:.1f} MB; the budget is 8 MB"


def test_demo_images():
    assert Image.open(data.demo_image("dog")).size == (456, 336)
    assert Image.open(data.demo_image("airplane")).size == (478, 354)
    with pytest.raises(FileNotFoundError, match="airplane"):
        data.demo_image("cat")


# ------------------------------------------------------------------ cifar10 resolution
def test_offline_falls_back_to_sample_at_once(monkeypatch, cache_dir, capsys):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    t0 = time.perf_counter()
    ds = data.cifar10(train=False)
    assert time.perf_counter() - t0 < 5
    assert ds.source == "sample" and len(ds) == 200
    img, label = ds[0]
    assert isinstance(img, Image.Image) and img.size == (32, 32) and label == 0
    assert ds.classes == data.CIFAR10_CLASSES
    assert ds.data.shape == (200, 32, 32, 3) and ds.data.dtype == np.uint8
    assert sorted(set(ds.targets)) == list(range(10))
    _said(capsys.readouterr().out, "CIFAR-10 test", "bundled sample", "200 images",
          "COURSE_OFFLINE=1", "COURSE_DATA_DIR", "cifar10-jpg")  # why, and how to get all
    assert len(data.cifar10()) == 1000  # train=True by default
    assert "CIFAR-10 train: bundled sample, 1,000 images" in capsys.readouterr().out


def test_blocked_network_falls_back_to_sample(monkeypatch, cache_dir, capsys):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    t0 = time.perf_counter()
    ds = data.cifar10(train=True, transform=torchvision.transforms.ToTensor())
    assert capsys.readouterr().out.startswith(
        "[course_utils] CIFAR-10 train: bundled sample, 1,000 images [no download (")
    assert time.perf_counter() - t0 < 15
    assert ds.source == "sample" and len(ds) == 1000
    x, y = ds[999]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() <= x.max() <= 1
    assert y == 9


def _official_copy(dest: Path) -> dict[str, str]:
    """Write the sample in the official pickle format; return {file name: md5}."""
    folder = dest / TV.base_folder
    folder.mkdir(parents=True)
    md5 = {}
    for name, split in [("data_batch_1", "train"), ("test_batch", "test")]:
        ds = data.CIFAR10Folder(data.CIFAR10_SAMPLE / split)
        batch = {"data": ds.data.transpose(0, 3, 1, 2).reshape(len(ds), -1),
                 "labels": list(ds.targets)}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": data.CIFAR10_CLASSES}))
    for p in folder.iterdir():
        md5[p.name] = hashlib.md5(p.read_bytes()).hexdigest()
    return md5


def _patch_md5s(monkeypatch, md5):
    """Point torchvision's integrity table at our copy (torchvision itself still checks)."""
    monkeypatch.setattr(TV, "train_list", [["data_batch_1", md5["data_batch_1"]]])
    monkeypatch.setattr(TV, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(TV, "meta", {**TV.meta, "md5": md5["batches.meta"]})


def test_official_files_come_first(tmp_path, monkeypatch, cache_dir, capsys):
    _patch_md5s(monkeypatch, _official_copy(tmp_path))
    ds = data.cifar10(train=True, root=tmp_path)
    assert isinstance(ds, TV) and ds.source == "official"
    assert len(ds) == 1000 and ds.classes == data.CIFAR10_CLASSES
    sample = data.CIFAR10Folder(data.CIFAR10_SAMPLE / "train")
    assert np.array_equal(ds.data, sample.data) and ds.targets == sample.targets
    _said(capsys.readouterr().out, "CIFAR-10 train", "official", str(tmp_path / TV.base_folder),
          "1,000")
    test = data.cifar10(train=False, root=tmp_path, verbose=False,
                        transform=torchvision.transforms.ToTensor(),
                        target_transform=lambda y: y + 100)
    x, y = test[199]
    assert len(test) == 200 and x.shape == (3, 32, 32) and y == 109
    assert capsys.readouterr().out == ""


def _serve_official_archive(tmp_path, monkeypatch, local_server) -> bytes:
    """A tiny official-format CIFAR-10 archive served by ``local_server`` at ``TV.url``, its
    md5 (and its files' md5s) patched in as torchvision's; returns the archive's bytes."""
    www, base = local_server
    staging = tmp_path / "staging"
    _patch_md5s(monkeypatch, _official_copy(staging))
    with tarfile.open(www / TV.filename, "w:gz") as tar:
        tar.add(staging / TV.base_folder, arcname=TV.base_folder)
    whole = (www / TV.filename).read_bytes()
    monkeypatch.setattr(TV, "url", f"{base}/{TV.filename}")
    monkeypatch.setattr(TV, "tgz_md5", hashlib.md5(whole).hexdigest())
    return whole


def test_download_branch_fetches_checks_and_extracts(tmp_path, monkeypatch, local_server,
                                                     cache_dir, capsys):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)  # (the mutation runs set it)
    _serve_official_archive(tmp_path, monkeypatch, local_server)
    root = tmp_path / "root"
    ds = data.cifar10(train=False, root=root)
    assert ds.source == "download" and len(ds) == 200
    _said(capsys.readouterr().out, "CIFAR-10 test", "downloaded", str(root), "200 images")
    assert (root / TV.base_folder / "test_batch").is_file()
    # the training split of a fresh download, with the transforms applied
    shown = data.cifar10(train=True, root=tmp_path / "root2", verbose=False,
                         transform=torchvision.transforms.ToTensor(),
                         target_transform=lambda y: y + 100)
    assert shown.source == "download" and len(shown) == 1000 and shown.train
    x, y = shown[999]
    assert x.shape == (3, 32, 32) and y == shown.targets[999] + 100
    # a second call finds the official files and does not download again
    (local_server[0] / TV.filename).unlink()
    assert data.cifar10(train=False, root=root).source == "official"


def test_image_folder_under_course_data_dir(tmp_path, monkeypatch, cache_dir, capsys):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setenv("COURSE_DATA_DIR", str(jpg_copy(tmp_path / "full", per_class=3)))
    ds = data.cifar10(train=True)
    assert ds.source == "image-folder" and len(ds) == 30
    folder = (tmp_path / "full").resolve() / "cifar10-jpg" / "train"
    assert ds.root == str(folder) and f"Root location: {folder}" in repr(ds)  # print(ds)
    _said(capsys.readouterr().out, "CIFAR-10 train", "image folder", str(folder), "30 images")
    shown = data.cifar10(train=True, verbose=False, transform=torchvision.transforms.ToTensor(),
                         target_transform=lambda y: y + 100)
    assert shown[29][0].shape == (3, 32, 32) and shown[29][1] == 109
    assert capsys.readouterr().out == ""
    assert ds.targets == [i // 3 for i in range(30)]
    assert list(cache_dir.glob("decoded-*.npy")), "decoded arrays are cached"
    again = data.cifar10(train=True, verbose=False)
    assert np.array_equal(again.data, ds.data)


def test_data_dir_argument_needs_no_environment(tmp_path, monkeypatch, cache_dir):
    """What the CLI's --data-dir does: the folder is passed down; no variable is read or set."""
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    ds = data.cifar10(train=False, data_dir=jpg_copy(tmp_path / "full", per_class=2))
    assert ds.source == "image-folder" and len(ds) == 20
    assert "COURSE_DATA_DIR" not in os.environ
    with pytest.raises(FileNotFoundError) as info:
        data.cifar10(data_dir=tmp_path / "nope")
    _names(str(info.value), str(tmp_path / "nope"), "does not exist", "cifar10-jpg/",
           "hymenoptera_data/")


def _jpg_archive(tmp_path: Path, per_class: int) -> Path:
    """A folder ``tmp_path/full`` holding ``cifar10-jpg.tar.gz`` of a small image-folder copy."""
    src = jpg_copy(tmp_path / "src", per_class=per_class)
    full = tmp_path / "full"
    full.mkdir()
    with tarfile.open(full / "cifar10-jpg.tar.gz", "w:gz") as tar:
        tar.add(src / "cifar10-jpg", arcname="cifar10-jpg")
    return full


def test_archive_under_course_data_dir_is_unpacked_once(tmp_path, monkeypatch, cache_dir,
                                                       capsys):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    full = _jpg_archive(tmp_path, per_class=2)
    monkeypatch.setenv("COURSE_DATA_DIR", str(full))
    assert len(data.cifar10(train=False, verbose=False)) == 20
    assert (cache_dir / "cifar10-jpg" / "test" / "truck").is_dir()
    out = capsys.readouterr().out
    _said(out, "unpacking", str(full / "cifar10-jpg.tar.gz"), str(cache_dir))
    assert "damaged" not in out  # the first time is not a repair
    (full / "cifar10-jpg.tar.gz").write_bytes(b"")  # would fail if unpacked again
    assert data.cifar10(train=True, verbose=False).source == "image-folder"


def test_a_damaged_copy_in_a_data_folder_that_is_the_cache_is_the_learners(tmp_path,
                                                                             monkeypatch):
    """COURSE_DATA_DIR names the course cache itself: its unpacked copy is the learner's too,
    so a damaged one is reported and left as it is (not removed and unpacked again)."""
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    both = _jpg_archive(tmp_path, per_class=1)
    monkeypatch.setenv("COURSE_CACHE_DIR", str(both))
    monkeypatch.setenv("COURSE_DATA_DIR", str(both))
    download.unpack_folder(both / "cifar10-jpg.tar.gz", "cifar10-jpg", both)
    shutil.rmtree(both / "cifar10-jpg" / "train")  # test/ kept, so it is found and checked
    before = snapshot(both)
    with pytest.raises(download.DamagedInputError) as info:
        data.cifar10(train=False, verbose=False)
    _left_alone(info.value, both / "cifar10-jpg", "damaged", "missing")
    assert snapshot(both) == before


def test_bad_course_data_dir_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="COURSE_DATA_DIR"):
        data.cifar10()


def test_wrong_class_folders_are_reported(tmp_path):
    (tmp_path / "test" / "cats").mkdir(parents=True)
    with pytest.raises(ValueError, match="ten CIFAR-10 class folders"):
        data.CIFAR10Folder(tmp_path / "test")


# ------------------------------------------------------------------------ ants and bees
def test_hymenoptera_offline_gives_sample(monkeypatch, cache_dir, capsys):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    assert data.hymenoptera() == data.HYMENOPTERA_SAMPLE
    _said(capsys.readouterr().out, "ants/bees", "sample", str(data.HYMENOPTERA_SAMPLE),
          "COURSE_OFFLINE=1", "398", "COURSE_DATA_DIR")
    assert data.hymenoptera(verbose=False) == data.HYMENOPTERA_SAMPLE
    assert capsys.readouterr().out == ""


def test_hymenoptera_under_course_data_dir(monkeypatch, tmp_path, cache_dir, capsys):
    (tmp_path / "hymenoptera_data" / "train" / "ants").mkdir(parents=True)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    found = tmp_path.resolve() / "hymenoptera_data"
    assert data.hymenoptera() == found
    _said(capsys.readouterr().out, "ants/bees", str(found))
    (cache_dir / "hymenoptera_data" / "train").mkdir(parents=True)  # the cache's copy first
    assert data.hymenoptera(verbose=False) == cache_dir / "hymenoptera_data"


def test_hymenoptera_data_dir_argument_needs_no_environment(monkeypatch, tmp_path, cache_dir):
    (tmp_path / "hymenoptera_data" / "train" / "ants").mkdir(parents=True)
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    assert data.hymenoptera(data_dir=tmp_path) == tmp_path.resolve() / "hymenoptera_data"
    with pytest.raises(FileNotFoundError, match="'.*typo' does not exist"):
        data.hymenoptera(data_dir=tmp_path / "typo")


def _ants_zip(www: Path, tmp_path: Path, corrupt: bool) -> str:
    """Serve hymenoptera_data.zip (two photos of the sample, one byte changed if ``corrupt``);
    return the tree checksum of the good copy."""
    good = tmp_path / "good" / "hymenoptera_data"
    for split in ("train", "val"):
        (good / split / "ants").mkdir(parents=True)
        photo = sorted((data.HYMENOPTERA_SAMPLE / split / "ants").glob("*.jpg"))[0]
        (good / split / "ants" / photo.name).write_bytes(photo.read_bytes())
    tree = download.tree_sha256(good)
    with zipfile.ZipFile(www / "hymenoptera_data.zip", "w") as zf:
        for p in sorted(good.rglob("*.jpg")):
            content = p.read_bytes()
            if corrupt:
                content = content[:-1] + bytes([content[-1] ^ 1])
            zf.writestr(p.relative_to(good.parent).as_posix(), content)
    return tree


def test_hymenoptera_download_is_checked_before_it_is_used(monkeypatch, tmp_path, local_server,
                                                            cache_dir, capsys):
    www, base = local_server
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)  # (the mutation runs set it)
    monkeypatch.setattr(ants_bees, "HYMENOPTERA_URL", f"{base}/hymenoptera_data.zip")
    root = tmp_path / "root"
    tree = _ants_zip(www, tmp_path, corrupt=True)
    monkeypatch.setattr(ants_bees, "HYMENOPTERA_TREE_SHA256", tree)
    with pytest.raises(download.ChecksumError, match="nothing was kept"):
        data.hymenoptera(root=root)
    # the first bad archive is reported and fetched once more; the second one is raised
    assert capsys.readouterr().out.count("nothing was kept") == 1
    assert list(root.iterdir()) == [], "no folder, temporary folder or archive is left behind"
    monkeypatch.setenv("COURSE_OFFLINE", "1")  # the next call must not find a bad copy
    assert data.hymenoptera(root=root) == data.HYMENOPTERA_SAMPLE
    monkeypatch.delenv("COURSE_OFFLINE")
    _ants_zip(www, tmp_path / "again", corrupt=False)  # the server now has the good archive
    capsys.readouterr()
    folder = data.hymenoptera(root=root)
    assert folder == root / "hymenoptera_data" and download.tree_sha256(folder) == tree
    _said(capsys.readouterr().out.splitlines(True)[-1], "ants/bees", "downloaded", str(folder))
    assert sorted(p.name for p in root.iterdir()) == ["hymenoptera_data", "hymenoptera_data.zip"]


def test_label_layout_and_photo_files(tmp_path, capsys):
    dest = data.make_label_layout(data.HYMENOPTERA_SAMPLE / "train", tmp_path / "数据集" / "train")
    ants = sorted((dest / "ants_image").iterdir())
    assert (dest / "ants_label" / "0013035.txt").read_text(encoding="utf-8") == "ants"
    assert len(list((dest / "bees_label").glob("*.txt"))) == 16
    photos = data.photo_files(dest / "ants_image")
    assert len(photos) == len(ants) - 1 and all(p.suffix == ".jpg" for p in photos)
    assert "imageNotFound.gif" in capsys.readouterr().out
    (dest / "ants_label" / "0013035.txt").write_text("mine", encoding="utf-8")
    data.make_label_layout(data.HYMENOPTERA_SAMPLE / "train", dest)  # never overwrites
    assert (dest / "ants_label" / "0013035.txt").read_text(encoding="utf-8") == "mine"


def test_as_tensors_and_spread_subset(monkeypatch, cache_dir):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    ds = data.cifar10(train=False, verbose=False)
    x, y = data.as_tensors(ds)
    assert x.shape == (200, 3, 32, 32) and x.dtype == torch.uint8 and y.shape == (200,)
    assert torch.equal(x[5].permute(1, 2, 0), torch.from_numpy(ds.data[5]))
    sub = data.spread_subset(ds, 50)
    assert len(sub) == 50 and {ds.targets[i] for i in sub.indices} == set(range(10))
    assert sub.dataset is ds and sub[3][1] == ds[12][1]  # items of the data set itself
    assert sub.indices == [0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60, 64, 68,
                           72, 76, 80, 84, 88, 92, 96, 100, 104, 108, 112, 116, 120, 124, 128,
                           132, 136, 140, 144, 148, 152, 156, 160, 164, 168, 172, 176, 180, 184,
                           188, 192, 196]
    assert data.spread_indices(10, 4) == [0, 2, 5, 7]  # i * 10 / 4 rounded down
    few_x, few_y = data.as_tensors(ds, limit=4)
    assert few_y.tolist() == [ds.targets[i] for i in (0, 50, 100, 150)]
    assert torch.equal(few_x, x[[0, 50, 100, 150]]) and few_x.is_contiguous()
    assert data.spread_subset(ds, 200) is ds and data.spread_subset(ds, 500) is ds
    assert data.spread_indices(5, 5) == data.spread_indices(5, 9) == [0, 1, 2, 3, 4]
    # labels kept as small numpy integers (a data set of one's own) still come out int64,
    # the type CrossEntropyLoss needs
    mine = types.SimpleNamespace(data=ds.data[:3], targets=np.array([3, 8, 8], dtype=np.uint8))
    assert data.as_tensors(mine)[1].dtype == torch.int64


def test_to_rgb_makes_transparency_white_and_scales_16_bit(tmp_path):
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 255))
    rgba.putpixel((0, 0), (0, 0, 0, 0))  # a fully transparent pixel
    rgba.save(tmp_path / "logo.png")
    rgb = data.open_rgb(tmp_path / "logo.png")
    assert rgb.mode == "RGB"
    assert rgb.getpixel((0, 0)) == (255, 255, 255) and rgb.getpixel((1, 1)) == (255, 0, 0)
    deep = Image.fromarray(np.array([[0, 32896, 65535]], dtype=np.uint16))
    assert deep.mode.startswith("I;16")
    assert [data.to_rgb(deep).getpixel((x, 0)) for x in range(3)] == \
        [(0, 0, 0), (128, 128, 128), (255, 255, 255)]
    gray = Image.new("L", (2, 2), 77)
    assert data.to_rgb(gray).getpixel((1, 1)) == (77, 77, 77)


# ------------------------------------------------------------------ damaged copies, no download
def test_damaged_official_files_are_removed_and_replaced(monkeypatch, cache_dir, capsys):
    """In the course's own cache; a root= of the learner's is only read (below)."""
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    md5 = _official_copy(cache_dir)
    _patch_md5s(monkeypatch, {**md5, "test_batch": "0" * 32})  # one file fails its md5
    ds = data.cifar10(train=False)
    assert ds.source == "sample"
    lines = capsys.readouterr().out.splitlines()
    _said(lines[0] + "\n", str(cache_dir / TV.base_folder), "damaged", "md5", "removed")
    assert len(lines) == 2 and not (cache_dir / TV.base_folder).exists()


def test_download_false_never_tries_the_network(monkeypatch, cache_dir, capsys):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)

    def no_download(*args, **kwargs):
        raise AssertionError("download=False must not download")

    monkeypatch.setattr(download, "download", no_download)
    assert data.cifar10(train=False, download=False).source == "sample"
    _said(capsys.readouterr().out, "CIFAR-10 test", "bundled sample", "200 images",
          "download=False", "COURSE_DATA_DIR")
    assert data.hymenoptera(download=False) == data.HYMENOPTERA_SAMPLE
    assert "[download=False]" in capsys.readouterr().out


def test_unpacked_copy_without_test_folder_is_unpacked_again(tmp_path, monkeypatch, cache_dir,
                                                             capsys):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    full = _jpg_archive(tmp_path, per_class=1)
    (cache_dir / "cifar10-jpg" / "train").mkdir(parents=True)  # a copy without test/
    ds = data.cifar10(train=False, data_dir=full, verbose=False)
    assert len(ds) == 10 and (cache_dir / "cifar10-jpg" / "test" / "cat").is_dir()
    target, archive = cache_dir / "cifar10-jpg", full / "cifar10-jpg.tar.gz"
    _said(capsys.readouterr().out, str(target), "damaged", "no test/ folder", str(archive),
          "again")


def test_damaged_ants_and_bees_copy_is_removed_and_the_next_one_used(tmp_path, monkeypatch,
                                                                     cache_dir, capsys):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    bad = cache_dir / "hymenoptera_data"
    (bad / "train" / "ants").mkdir(parents=True)
    (bad / "train" / "ants" / "a.jpg").write_bytes(b"cut")
    (bad / download.MANIFEST).write_text('{"train/ants/a.jpg": 999}', encoding="utf-8")
    damage = download.check_unpacked(bad)
    assert damage is not None
    (tmp_path / "mine" / "hymenoptera_data" / "train").mkdir(parents=True)
    found = data.hymenoptera(data_dir=tmp_path / "mine", verbose=False)
    assert found == (tmp_path / "mine").resolve() / "hymenoptera_data" and not bad.exists()
    _said(capsys.readouterr().out, str(bad), "damaged", damage, "removed")


def test_hymenoptera_with_the_network_blocked_gives_the_sample(monkeypatch, cache_dir, capsys):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    assert data.hymenoptera() == data.HYMENOPTERA_SAMPLE
    assert capsys.readouterr().out.startswith(
        f"[course_utils] ants/bees: bundled sample {data.HYMENOPTERA_SAMPLE} [no download (")


# ------------------------------------------------------------------ the image-folder data set
def test_image_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        data.CIFAR10Folder(tmp_path / "nope")
    _names(str(info.value), str(tmp_path / "nope"), "does not exist")
    for name in data.CIFAR10_CLASSES:
        (tmp_path / "empty" / name).mkdir(parents=True)
    (tmp_path / "empty" / "cat" / "notes.txt").write_text("not a photo", encoding="utf-8")
    with pytest.raises(ValueError) as info:
        data.CIFAR10Folder(tmp_path / "empty")
    _names(str(info.value), str(tmp_path / "empty"), "no photos", *data.PHOTO_SUFFIXES)
    Image.new("RGB", (40, 32)).save(tmp_path / "empty" / "cat" / "big.png")
    with pytest.raises(ValueError, match="CIFAR-10 images are"):
        data.CIFAR10Folder(tmp_path / "empty")


def test_decoded_images_are_cached_and_reused(tmp_path, monkeypatch, cache_dir):
    split = jpg_copy(tmp_path / "full", per_class=1) / "cifar10-jpg" / "test"
    first = data.CIFAR10Folder(split)
    assert first.data.shape == (10, 32, 32, 3) and len(list(cache_dir.glob("decoded-*.npy"))) == 1

    def no_decoding(path):
        raise AssertionError("the cached array should have been used")

    monkeypatch.setattr(data, "_decode_32x32", no_decoding)
    again = data.CIFAR10Folder(split)
    assert np.array_equal(again.data, first.data) and again.targets == list(range(10))


def test_a_download_that_fails_its_md5_is_not_used(tmp_path, monkeypatch, local_server,
                                                   cache_dir, capsys):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    _serve_official_archive(tmp_path, monkeypatch, local_server)
    monkeypatch.setattr(TV, "tgz_md5", "0" * 32)  # not the archive the server sends
    root = tmp_path / "root"
    assert data.cifar10(train=False, root=root).source == "sample"
    assert not (root / TV.base_folder).exists()
    assert capsys.readouterr().out.startswith(
        "[course_utils] CIFAR-10 test: bundled sample, 200 images [no download (")


# ------------------------------------------------------- a root= of the learner's is only read
def _left_alone(error: Exception, path: Path, *words: str) -> None:
    """The error names ``path``, says it was left as it is and how to fix it (copy it again)."""
    text = str(error)
    assert "\n" not in text and str(path) in text, text
    for word in ("left as it is", "copy", "again", *words):
        assert word in text.lower(), (word, text)


@pytest.mark.parametrize("damage", ["a file cut short", "a file missing"])
def test_a_damaged_official_folder_in_the_learners_root_is_reported_and_left_alone(
        tmp_path, monkeypatch, cache_dir, damage):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)  # online: nothing may replace it either
    monkeypatch.setattr(TV, "url", "http://127.0.0.1:9/never-asked.tar.gz")
    mine = tmp_path / "mine"
    _patch_md5s(monkeypatch, _official_copy(mine))
    victim = mine / TV.base_folder / "test_batch"
    if damage == "a file missing":
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[:1000])
    before = snapshot(mine)
    with pytest.raises(download.DamagedInputError) as info:
        data.cifar10(train=False, root=mine, verbose=False)
    _left_alone(info.value, mine / TV.base_folder, "damaged", "md5")
    assert snapshot(mine) == before and sorted(p.name for p in mine.iterdir()) == [TV.base_folder]
    # the same damage in the course's own cache (no root=) is removed and made again
    shutil.copytree(mine / TV.base_folder, cache_dir / TV.base_folder)
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    assert data.cifar10(train=False, verbose=False).source == "sample"
    assert not (cache_dir / TV.base_folder).exists()
    # a root= that IS the course cache is the course's own too
    shutil.copytree(mine / TV.base_folder, cache_dir / TV.base_folder)
    assert data.cifar10(train=False, root=cache_dir, verbose=False).source == "sample"
    assert not (cache_dir / TV.base_folder).exists()


def test_a_damaged_archive_in_the_learners_root_is_not_downloaded_over(
        tmp_path, monkeypatch, local_server, cache_dir):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    whole = _serve_official_archive(tmp_path, monkeypatch, local_server)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / TV.filename).write_bytes(whole[: len(whole) // 2])  # the learner's half copy
    before = snapshot(mine)
    with pytest.raises(download.DamagedInputError) as info:
        data.cifar10(train=False, root=mine, verbose=False)
    _left_alone(info.value, mine / TV.filename, "damaged", "md5", TV.tgz_md5)
    assert snapshot(mine) == before and sorted(p.name for p in mine.iterdir()) == [TV.filename]
    # a whole copy of the learner's is used as it is: unpacked beside it, never downloaded
    (mine / TV.filename).write_bytes(whole)
    (local_server[0] / TV.filename).unlink()
    kept = snapshot(mine)
    ds = data.cifar10(train=False, root=mine, verbose=False)
    assert ds.source == "download" and len(ds) == 200
    assert {k: v for k, v in snapshot(mine).items() if k in kept} == kept


def test_a_damaged_ants_and_bees_copy_in_the_learners_root_is_reported_and_left_alone(
        tmp_path, monkeypatch, local_server, cache_dir):
    www, base = local_server
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.setattr(ants_bees, "HYMENOPTERA_URL", f"{base}/hymenoptera_data.zip")
    monkeypatch.setattr(ants_bees, "HYMENOPTERA_TREE_SHA256", _ants_zip(www, tmp_path, False))
    mine = tmp_path / "mine"
    folder = mine / "hymenoptera_data"
    shutil.copytree(data.HYMENOPTERA_SAMPLE, folder)
    sizes = {p.relative_to(folder).as_posix(): p.stat().st_size
             for p in folder.rglob("*") if p.is_file()}
    (folder / download.MANIFEST).write_text(json.dumps(sizes), encoding="utf-8")
    photo = sorted((folder / "train" / "bees").glob("*.jpg"))[0]
    photo.write_bytes(photo.read_bytes()[:100])
    before = snapshot(mine)
    with pytest.raises(download.DamagedInputError) as info:
        data.hymenoptera(root=mine, verbose=False)
    _left_alone(info.value, folder, "damaged", "cut short")
    assert snapshot(mine) == before
    # half a copy (no train/) is not unpacked over
    shutil.rmtree(folder / "train")
    before = snapshot(mine)
    with pytest.raises(download.DamagedInputError) as info:
        data.hymenoptera(root=mine, verbose=False)
    _left_alone(info.value, folder, "train/")
    assert snapshot(mine) == before
    # an archive of the learner's that is cut short is reported, not deleted and fetched again
    shutil.rmtree(folder)
    (mine / "hymenoptera_data.zip").write_bytes((www / "hymenoptera_data.zip").read_bytes()[:300])
    before = snapshot(mine)
    with pytest.raises(download.DamagedInputError) as info:
        data.hymenoptera(root=mine, verbose=False)
    _left_alone(info.value, mine / "hymenoptera_data.zip", "cut short")
    assert snapshot(mine) == before and sorted(p.name for p in mine.iterdir()) == [
        "hymenoptera_data.zip"]


def test_a_chinese_learner_reads_the_damaged_folder_line_in_chinese(tmp_path, monkeypatch):
    """The ``root=`` errors go through the course language (they were English in a Chinese
    kernel): Chinese words, the folder named, the fix ("重新复制"), and what is damaged."""
    from course_utils import i18n

    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    folder = tmp_path / "mine" / "hymenoptera_data"
    shutil.copytree(data.HYMENOPTERA_SAMPLE, folder)
    sizes = {p.relative_to(folder).as_posix(): p.stat().st_size
             for p in folder.rglob("*") if p.is_file()}
    (folder / download.MANIFEST).write_text(json.dumps(sizes), encoding="utf-8")
    (sorted((folder / "val" / "ants").glob("*.jpg"))[0]).unlink()
    before = snapshot(folder.parent)
    i18n.set_language("zh")
    i18n.MISSED.clear()
    with pytest.raises(download.DamagedInputError) as info:
        data.hymenoptera(root=folder.parent, verbose=False)
    text = str(info.value)
    assert str(folder) in text and "重新复制" in text and "缺了 1 个文件" in text, text
    assert "left as it is" not in text and not i18n.MISSED, (text, i18n.MISSED)
    assert snapshot(folder.parent) == before


def test_offline_ants_and_bees_say_why_and_how_to_get_the_full_set(monkeypatch, cache_dir,
                                                                     capsys):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    assert data.hymenoptera() == data.HYMENOPTERA_SAMPLE
    _said(capsys.readouterr().out, str(data.HYMENOPTERA_SAMPLE), "[COURSE_OFFLINE=1]", "398",
          "COURSE_DATA_DIR")
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    assert data.hymenoptera(download=False) == data.HYMENOPTERA_SAMPLE
    assert "[download=False]" in capsys.readouterr().out


def test_a_damaged_archive_in_the_course_cache_is_downloaded_anew(tmp_path, monkeypatch,
                                                                  local_server, cache_dir):
    """The cache is the course's: a half archive there (an interrupted download) is replaced
    by a new download, not reported as the learner's."""
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    whole = _serve_official_archive(tmp_path, monkeypatch, local_server)
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / TV.filename).write_bytes(whole[: len(whole) // 3])
    ds = data.cifar10(train=False, verbose=False)
    assert ds.source == "download" and len(ds) == 200
    assert (cache_dir / TV.filename).read_bytes() == whole


def test_a_download_that_is_no_archive_is_deleted_and_the_sample_used(tmp_path, monkeypatch,
                                                                      local_server, cache_dir,
                                                                      capsys):
    """The server sent bytes with the expected md5 that are no archive (a proxy's page saved
    under that name): the course's own download is deleted, the run goes on with the sample
    and says why."""
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    www, base = local_server
    (www / TV.filename).write_bytes(b"<html>not an archive</html>")
    monkeypatch.setattr(TV, "url", f"{base}/{TV.filename}")
    monkeypatch.setattr(TV, "tgz_md5", hashlib.md5(b"<html>not an archive</html>").hexdigest())
    ds = data.cifar10(train=False)
    assert ds.source == "sample" and not (cache_dir / TV.filename).exists()
    out = capsys.readouterr().out
    assert "no download" in out and str(cache_dir / TV.filename) in out, out


def test_the_cache_named_as_the_learners_data_folder_is_only_read(tmp_path, monkeypatch):
    """COURSE_DATA_DIR and COURSE_CACHE_DIR name one folder: its official CIFAR-10 files are
    the learner's, so damaged ones are reported and left as they are."""
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    both = tmp_path / "both"
    _patch_md5s(monkeypatch, _official_copy(both))
    monkeypatch.setenv("COURSE_CACHE_DIR", str(both))
    monkeypatch.setenv("COURSE_DATA_DIR", str(both))
    victim = both / TV.base_folder / "test_batch"
    victim.write_bytes(victim.read_bytes()[:500])
    before = snapshot(both)
    with pytest.raises(download.DamagedInputError) as info:
        data.cifar10(train=False, verbose=False)
    _left_alone(info.value, both / TV.base_folder, "damaged")
    assert snapshot(both) == before
