"""Caches are disposable: a damaged, cut-short or half-copied file that the course keeps for
itself (decoded images, an unpacked archive, a download, the sample batches) is detected,
reported in one line and rebuilt; it never stops a run. Two real processes building the same
cache at once end with one good copy."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from _helpers import jpg_copy

from course_utils import ants_bees, caches, data, files
from course_utils import cifar_batches as cb
from course_utils import download as dl
from course_utils.settings import REPO_ROOT


def _one_line(out: str, *words: str) -> None:
    lines = [line for line in out.splitlines() if re.search(r"\bis damaged\b", line)]
    assert len(lines) == 1, out
    # the prefix tells the course's lines from the learner's own prints (and the website's
    # Chinese pages translate the lines that carry it)
    assert lines[0].startswith("[course_utils] "), lines[0]
    assert all(word in lines[0] for word in words), lines[0]


@pytest.mark.parametrize("damage", ["cut short", "half copied", "a flipped byte", "older format"])
def test_a_damaged_decoded_image_cache_is_rebuilt(tmp_path, cache_dir, capsys, damage):
    split = jpg_copy(tmp_path / "full", per_class=2) / "cifar10-jpg" / "test"
    want = data.CIFAR10Folder(split).data
    (cache,) = cache_dir.glob("decoded-*.npy")
    good = cache.read_bytes()
    raw = {"cut short": good[:-100], "half copied": good[:len(good) // 2],
           "a flipped byte": good[:500] + bytes([good[500] ^ 1]) + good[501:],
           "older format": good[:-len(caches.TRAILER) - 4]}[damage]
    cache.write_bytes(raw)
    capsys.readouterr()
    again = data.CIFAR10Folder(split)
    # why, in a few words: the checksum, or the error numpy raised (its name and its own words)
    why = ("checksum",) if damage in ("a flipped byte", "older format") else ("ValueError: ",)
    out = capsys.readouterr().out
    _one_line(out, cache.name, "rebuilding", *why)
    assert "unreadable" not in out
    assert np.array_equal(again.data, want)
    assert cache.read_bytes() == good and not list(cache_dir.glob(".*.tmp"))


def test_caches_read_array_refuses_another_shape(tmp_path, capsys):
    path = caches.write_array(tmp_path / "x.npy", np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert caches.read_array(path, (2, 3)).tolist() == [[0, 1, 2], [3, 4, 5]]
    assert caches.read_array(path, (3, 2)) is None
    assert "not uint8 (3, 2)" in capsys.readouterr().out
    assert caches.read_array(tmp_path / "missing.npy", (2, 3)) is None
    assert capsys.readouterr().out == ""  # a missing cache is no news


def test_caches_read_array_says_why_in_one_line(tmp_path, monkeypatch, capsys):
    path = caches.write_array(tmp_path / "x.npy", np.zeros((2, 3), np.uint8))
    for error, why in ((ValueError("disk said no\nsecond line"), "ValueError: disk said no"),
                       (OSError(), "OSError: unreadable")):  # an error without words
        def fail(*args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(np.lib.format, "read_array", fail)
        assert caches.read_array(path, (2, 3)) is None
        out = capsys.readouterr().out
        _one_line(out, "x.npy", why, "rebuilding")
        assert "second line" not in out


def test_caches_write_array_never_writes_a_pickle(tmp_path):
    with pytest.raises(ValueError):
        caches.write_array(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object))
    assert not (tmp_path / "o.npy").exists()


def test_a_full_disk_while_caching_names_the_cache_folder_and_the_fix(tmp_path, monkeypatch):
    def full(f, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np.lib.format, "write_array", full)
    with pytest.raises(files.WriteError) as info:
        caches.write_array(tmp_path / "x.npy", np.zeros((2, 3), np.uint8))
    text = str(info.value)
    assert str(tmp_path) in text and "no space left" in text and "COURSE_CACHE_DIR" in text
    assert list(tmp_path.iterdir()) == []  # no temporary left


class _Planted:
    """Unpickling it writes ``path``: what a planted cache file could make a reader do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_caches_read_array_never_unpickles(tmp_path, capsys):
    """A cache file is only data: an object array in it is refused before it is unpickled."""
    planted = tmp_path / "unpickled"
    arr = np.empty((2, 3), dtype=object)
    arr[:] = _Planted(planted)
    with open(tmp_path / "x.npy", "wb") as f:
        np.lib.format.write_array(f, arr, allow_pickle=True)
    assert caches.read_array(tmp_path / "x.npy", (2, 3), dtype=object) is None
    assert not planted.exists()
    _one_line(capsys.readouterr().out, "x.npy", "rebuilding")


@pytest.mark.parametrize("damage", ["cut short", "missing"])
def test_a_damaged_unpacked_archive_is_unpacked_again(tmp_path, cache_dir, monkeypatch, capsys,
                                                      damage):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    src = jpg_copy(tmp_path / "src", per_class=2)
    full = tmp_path / "full"
    full.mkdir()
    with tarfile.open(full / "cifar10-jpg.tar.gz", "w:gz") as tar:
        tar.add(src / "cifar10-jpg", arcname="cifar10-jpg")
    want = data.cifar10(train=False, data_dir=full).data
    victim = sorted((cache_dir / "cifar10-jpg" / "test" / "cat").glob("*.jpg"))[0]
    if damage == "missing":
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[:100])
    capsys.readouterr()
    ds = data.cifar10(train=False, data_dir=full)
    _one_line(capsys.readouterr().out, str(cache_dir / "cifar10-jpg"), damage.split()[0])
    assert np.array_equal(ds.data, want) and ds.source == "image-folder"
    assert dl.check_unpacked(cache_dir / "cifar10-jpg") is None
    assert not [p for p in cache_dir.iterdir() if p.name.startswith(".cifar10-jpg")]


def test_damaged_official_files_are_set_aside(cache_dir, offline, capsys):
    """In the course's own cache (a root= of the learner's is only read: test_data)."""
    folder = cache_dir / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    (folder / "test_batch").write_bytes(b"half a file")
    ds = data.cifar10(train=False)
    _one_line(capsys.readouterr().out, str(folder), "made again")
    assert ds.source == "sample" and len(ds) == 200 and not folder.exists()


def test_a_partial_download_is_downloaded_again(tmp_path, local_server, capsys, monkeypatch):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    www, base = local_server
    payload = os.urandom(50_000)
    (www / "blob.bin").write_bytes(payload)
    dest = tmp_path / "blob.bin"
    dest.write_bytes(payload[:20_000])  # an earlier download, cut off
    got = dl.download(f"{base}/blob.bin", dest, md5=hashlib.md5(payload).hexdigest(),
                      progress=False)
    _one_line(capsys.readouterr().out, str(dest), "again")
    assert got.read_bytes() == payload
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.bin", "www"]


def test_a_cut_archive_without_checksum_is_fetched_again(tmp_path, local_server, capsys,
                                                         monkeypatch, cache_dir):
    """The ants/bees zip has no published md5: a cut copy fails to unpack, is deleted,
    reported, downloaded again."""
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    www, base = local_server
    good = tmp_path / "made" / "hymenoptera_data"
    for split in ("train", "val"):
        (good / split / "ants").mkdir(parents=True)
        photo = sorted((data.HYMENOPTERA_SAMPLE / split / "ants").glob("*.jpg"))[0]
        shutil.copy(photo, good / split / "ants")
    with zipfile.ZipFile(www / "hymenoptera_data.zip", "w") as zf:
        for p in sorted(good.rglob("*.jpg")):
            zf.write(p, p.relative_to(good.parent).as_posix())
    monkeypatch.setattr(ants_bees, "HYMENOPTERA_URL", f"{base}/hymenoptera_data.zip")
    monkeypatch.setattr(ants_bees, "HYMENOPTERA_TREE_SHA256", dl.tree_sha256(good))
    root = cache_dir  # the course's own cache (a root= of the learner's is only read)
    root.mkdir()
    (root / "hymenoptera_data.zip").write_bytes((www / "hymenoptera_data.zip").read_bytes()[:300])
    folder = data.hymenoptera()
    out = capsys.readouterr().out
    assert "damaged or cut short" in out and out.count("hymenoptera_data.zip is damaged") == 1
    assert folder == root / "hymenoptera_data"
    assert dl.tree_sha256(folder) == dl.tree_sha256(good)
    # the unpacked copy is checked too: a file cut short → removed, made again
    victim = next((folder / "train" / "ants").iterdir())
    victim.write_bytes(b"")
    capsys.readouterr()
    assert data.hymenoptera() == folder
    assert "cut short or changed" in capsys.readouterr().out
    assert dl.tree_sha256(folder) == dl.tree_sha256(good)


def test_damaged_sample_batches_are_rewritten(cache_dir, capsys):
    root = cb.write_sample_batches()
    batch = root / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(batch.read_bytes()[:1000])
    capsys.readouterr()
    cb.write_sample_batches()
    _one_line(capsys.readouterr().out, str(batch), "again")
    assert len(cb.SampleCIFAR10(root, train=False)) == 200


BUILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    import numpy as np
    from course_utils import data
    real_replace = os.replace
    def slow_replace(src, dst):  # both processes hold a finished temporary at the same time
        time.sleep(0.5)
        return real_replace(src, dst)
    os.replace = slow_replace
    go = Path(sys.argv[2])
    Path(sys.argv[3]).touch()
    while not go.exists():
        time.sleep(0.005)
    ds = data.cifar10(train=False, data_dir=sys.argv[1], verbose=False)
    np.save(sys.argv[4], ds.data)
""")


def test_two_processes_building_the_same_caches_end_with_one_good_copy(tmp_path, cache_dir):
    src = jpg_copy(tmp_path / "src", per_class=5)
    full = tmp_path / "full"
    full.mkdir()
    with tarfile.open(full / "cifar10-jpg.tar.gz", "w:gz") as tar:
        tar.add(src / "cifar10-jpg", arcname="cifar10-jpg")
    env = {**os.environ, "COURSE_OFFLINE": "1", "COURSE_CACHE_DIR": str(cache_dir),
           "PYTHONPATH": str(REPO_ROOT)}
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", BUILD, str(full), str(go),
                               str(tmp_path / f"ready{i}"), str(tmp_path / f"out{i}.npy")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(2)]
    deadline = 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)) and deadline > 0:
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        deadline -= 0.05
        subprocess.run(["sleep", "0.05"])
    go.touch()  # both start unpacking and decoding now
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        assert b"damaged" not in out + err
    want = data.CIFAR10Folder(src / "cifar10-jpg" / "test").data
    for i in range(2):
        assert np.array_equal(np.load(tmp_path / f"out{i}.npy"), want)
    assert dl.check_unpacked(cache_dir / "cifar10-jpg") is None
    decoded = list(cache_dir.glob("decoded-*.npy"))
    assert len(decoded) == 2  # the unpacked test split, and the src copy decoded just now
    assert not [p.name for p in cache_dir.iterdir() if p.name.startswith(".")], \
        "a temporary file or folder was left behind"
