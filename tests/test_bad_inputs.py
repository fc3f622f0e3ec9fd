"""What learners feed the course: odd files, odd images, odd paths, odd checkpoints, odd CLI
values. Each gets a clear message naming the file or value (or a reported skip); nothing the
learner made is overwritten; the CLI ends with an exit code, not a traceback."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from _helpers import jpg_copy, snapshot
from PIL import Image
from torch import nn

from course_utils import (
    archives,
    checkpoints,
    data,
    download,
    engine,
    loaders,
    models,
    predict,
    runs,
)
from course_utils.checkpoints import CheckpointError, save_with_device_tag
from course_utils.settings import REPO_ROOT
from course_utils.tb import check_image, read_scalars

DOG = data.demo_image("dog")
ANTS = data.HYMENOPTERA_SAMPLE / "train" / "ants"


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny models: one thread is as fast, and far faster on a machine busy with other work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)




@pytest.fixture(scope="module")
def tudui_ckpt(tmp_path_factory, _one_torch_thread) -> Path:
    """A checkpoint of the course's Tudui as ``fit`` writes it (one epoch on 60 images)."""
    folder = tmp_path_factory.mktemp("ckpt")
    xs, ys = data.as_tensors(data.cifar10(train=False, verbose=False))
    torch.manual_seed(0)
    loader = loaders.TensorLoader(xs[:60], ys[:60], batch_size=20)
    model = models.Tudui()
    engine.fit(model, loader, loader, epochs=1, device="cpu", progress=False,
               optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
               loss_fn=nn.CrossEntropyLoss(), run_dir=folder, model_name="tudui")
    return folder / "checkpoints" / "last.pt"


def _bad_files(folder: Path) -> dict[str, Path]:
    """Real broken files: half a JPEG, a text file called .jpg, an empty .png."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = (ANTS / "0013035.jpg").read_bytes()
    files = {"truncated": folder / "half.jpg", "text": folder / "notes.jpg",
             "empty": folder / "empty.png"}
    files["truncated"].write_bytes(photo[: len(photo) // 3])
    files["text"].write_text("ants are insects\n", encoding="utf-8")
    files["empty"].write_bytes(b"")
    return files


# --------------------------------------------------------------------- image folders
def test_placeholder_gif_in_the_ants_folder_is_skipped_and_reported(capsys):
    photos = data.photo_files(ANTS)
    assert (ANTS / "imageNotFound.gif").exists()
    assert ANTS / "imageNotFound.gif" not in photos and ANTS / "0013035.jpg" in photos
    assert len(photos) == len(list(ANTS.iterdir())) - 1
    out = capsys.readouterr().out
    assert "skipped 1 non-photo file(s): imageNotFound.gif" in out and str(ANTS) in out


@pytest.mark.parametrize("kind", ["truncated", "text", "empty"])
def test_corrupt_or_non_image_file_names_the_file(tmp_path, kind):
    path = _bad_files(tmp_path)[kind]
    with pytest.raises(ValueError) as info:
        data.open_rgb(path)
    assert str(path) in str(info.value) and "Replace or delete" in str(info.value)
    with pytest.raises(ValueError, match=path.name):
        predict.preprocess(path)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "P", "I;16", "CMYK"])
def test_rgba_grayscale_palette_16bit_and_cmyk_become_rgb(tmp_path, mode):
    rgb = Image.open(DOG).convert("RGB")
    odd = rgb.convert("L").convert("I;16") if mode == "I;16" else rgb.convert(mode)
    path = tmp_path / f"dog_{mode.replace(';', '')}.{'jpg' if mode == 'CMYK' else 'png'}"
    odd.save(path)
    assert Image.open(path).mode == mode
    img = data.open_rgb(path)
    assert img.mode == "RGB" and img.size == rgb.size
    x = predict.preprocess(path)
    assert x.shape == (1, 3, 32, 32) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_empty_and_photo_less_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no photos"):
        data.photo_files(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    shutil.copy(ANTS / "imageNotFound.gif", tmp_path / "junk")
    (tmp_path / "junk" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="junk holds no photos"):
        data.photo_files(tmp_path / "junk")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.photo_files(tmp_path / "no-such-folder")


def _cifar_copy(tmp_path: Path) -> Path:
    """A COURSE_DATA_DIR holding a copy of the bundled sample as cifar10-jpg/."""
    root = tmp_path / "data"
    shutil.copytree(data.CIFAR10_SAMPLE, root / "cifar10-jpg")
    return root


@pytest.mark.parametrize("damage", ["truncated", "text", "too big", "empty classes"])
def test_cifar_image_folder_with_a_bad_file_names_it(tmp_path, monkeypatch, cache_dir, damage):
    root = _cifar_copy(tmp_path)
    cats = root / "cifar10-jpg" / "test" / "cat"
    victim = sorted(cats.iterdir())[3]
    if damage == "truncated":
        victim.write_bytes(victim.read_bytes()[:200])
    elif damage == "text":
        victim.write_text("not a picture")
    elif damage == "too big":
        Image.open(DOG).save(victim, format="JPEG")
    else:
        for folder in (root / "cifar10-jpg" / "test").iterdir():
            for f in folder.iterdir():
                f.unlink()
    monkeypatch.setenv("COURSE_DATA_DIR", str(root))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    with pytest.raises(ValueError) as info:
        data.cifar10(train=False)
    text = str(info.value)
    if damage == "empty classes":
        assert "hold no photos" in text and "test" in text
    else:
        assert str(victim) in text
        assert ("32×32" in text) if damage == "too big" else ("not a readable image" in text)


def test_chinese_paths_work_end_to_end(tmp_path, offline, capsys, run_cli):
    base = tmp_path / "我的数据" / "蚂蚁和蜜蜂"
    shutil.copytree(data.HYMENOPTERA_SAMPLE / "train", base)
    photos = data.photo_files(base / "ants")
    assert data.open_rgb(photos[0]).mode == "RGB"
    layout = data.make_label_layout(base, tmp_path / "练习")
    assert (layout / "ants_label" / "0013035.txt").read_text(encoding="utf-8") == "ants"

    dog = tmp_path / "图片" / "小狗.png"
    dog.parent.mkdir()
    shutil.copy(DOG, dog)
    run = runs.new_run_dir(tmp_path / "日志", "第一次")
    assert run.parent.name == "日志" and run.name.endswith("_第一次")
    xs, ys = data.as_tensors(data.cifar10(train=False, verbose=False))
    loader = loaders.TensorLoader(xs[:40], ys[:40], batch_size=10)
    model = models.Tudui()
    engine.fit(model, loader, loader, epochs=1, device="cpu", progress=False, log_every=1,
               optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
               loss_fn=nn.CrossEntropyLoss(), run_dir=run, model_name="tudui")
    assert [s for s, _ in read_scalars(run)["train_loss"]] == [1, 2, 3, 4]
    capsys.readouterr()
    code, out, err = run_cli("predict", dog, "--checkpoint",
                           run / "checkpoints" / "last.pt", "--topk", "2")
    assert code == 0, err
    assert out.startswith(f"{dog}: ") and out.count("%") == 2


# --------------------------------------------------------------------- missing data
def test_missing_data_while_offline(tmp_path, monkeypatch, cache_dir, capsys):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    with pytest.raises(download.OfflineError, match="COURSE_OFFLINE=1"):
        download.download("https://example.org/cifar.tgz", tmp_path / "cifar.tgz")
    assert not list(tmp_path.glob("cifar*"))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "typo"))
    with pytest.raises(FileNotFoundError, match="COURSE_DATA_DIR=.*typo.*unset"):
        data.cifar10(train=False)
    monkeypatch.delenv("COURSE_DATA_DIR")
    ds = data.cifar10(train=False)
    assert ds.source == "sample" and len(ds) == 200
    assert "COURSE_OFFLINE=1" in capsys.readouterr().out


# --------------------------------------------------------------------- image logging
@pytest.mark.parametrize("img, formats, message", [
    (torch.rand(32, 32, 3), "CHW", "dataformats='HWC'"),        # layout: channels last
    (torch.rand(8, 3, 32, 32), "CHW", "4 dimensions"),           # a batch to add_image
    (torch.rand(3, 32), "CHW", "2 dimensions"),                  # shape
    (torch.randint(0, 255, (3, 8, 8)), "CHW", "uint8"),          # int64 instead of uint8
    (torch.rand(3, 8, 8) * 255, "CHW", "Divide by 255"),         # float 0–255
    (torch.rand(3, 8, 8) - 0.5, "CHW", "Normalize"),             # normalised values
    (torch.zeros(3, 8, 8, dtype=torch.bool), "CHW", "dtype bool"),
])  # fmt: skip
def test_image_logging_explains_wrong_shape_dtype_layout(img, formats, message):
    with pytest.raises((ValueError, TypeError), match=message):
        check_image(img, formats)


# --------------------------------------------------------------------- checkpoints
def test_checkpoint_of_another_architecture(tmp_path, capsys, tudui_ckpt, run_cli):
    with pytest.raises(CheckpointError) as info:
        checkpoints.load_checkpoint(tudui_ckpt, models.TuduiBN())
    assert str(tudui_ckpt) in str(info.value) and "different architecture" in str(info.value)
    foreign = tmp_path / "resnet18_state_dict.pth"
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), foreign)
    code, out, err = run_cli("predict", DOG, "--checkpoint", foreign)
    assert code == 2 and out == ""
    assert str(foreign) in err and "different architecture" in err and "Traceback" not in err


def test_checkpoint_saved_on_a_gpu_loads_on_this_cpu(tmp_path, capsys, tudui_ckpt, run_cli,
                                                     monkeypatch):
    """A machine without CUDA is simulated, so this runs the same on GPU machines."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    state = checkpoints.load_checkpoint(tudui_ckpt)
    gpu = save_with_device_tag(state, tmp_path / "from_gpu.pt", "cuda:0")
    with pytest.raises(CheckpointError, match="map_location='cpu'"):
        checkpoints.load_checkpoint(gpu, map_location=None)
    model, _ = predict.load_trained(gpu)
    assert next(model.parameters()).device.type == "cpu"
    code, out, err = run_cli("predict", DOG, "--checkpoint", gpu, "--device", "cpu")
    assert code == 0 and out.startswith(f"{DOG}: "), err


class _Payload:
    """A pickle that creates a file when unpickled — what a malicious "model" can do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_untrusted_pickle_is_never_unpickled(tmp_path, capsys, run_cli):
    marker = tmp_path / "pwned"
    evil = tmp_path / "model.pth"
    torch.save({"model": _Payload(marker)}, evil)
    with pytest.raises(CheckpointError, match="not a plain weights file.*load_whole_model"):
        checkpoints.load_checkpoint(evil)
    with pytest.raises(CheckpointError, match="trust=True") as info:
        checkpoints.load_whole_model(evil)
    assert "execute" in str(info.value)  # says why
    code, _, err = run_cli("predict", DOG, "--checkpoint", evil)
    assert code == 2 and "Traceback" not in err and "load_whole_model" in err
    assert not marker.exists(), "the untrusted pickle ran code"
    torch.load(evil, weights_only=False)  # proof that the payload is armed: unsafe load runs it
    assert marker.exists()
    # the learner's own whole model (the course's method 1) loads once trusted
    mine = tmp_path / "tudui_method1.pth"
    torch.save(models.Tudui(), mine)
    assert isinstance(checkpoints.load_whole_model(mine, trust=True), models.Tudui)
    pickled_weights = tmp_path / "weights.pkl"  # plain pickle, not torch.save
    pickled_weights.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
    with pytest.raises(CheckpointError, match="weights.pkl"):
        checkpoints.load_checkpoint(pickled_weights)


# --------------------------------------------------------------------- CLI values
@pytest.mark.parametrize("args, message", [
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--epochs", "2.5"], "--epochs"),
    (["train", "--batch-size", "-8"], "--batch-size"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--lr", "1e999"], "--lr"),
    (["train", "--momentum", "abc"], "--momentum"),
    (["train", "--momentum", "1.5"], "--momentum"),
    (["train", "--model", "resnet50"], "resnet50"),
    (["train", "--data-dir", "/no/such/folder"], "/no/such/folder"),
    (["train", "--resume", "/no/such/run"], "/no/such/run"),
    (["train", "--device", "tpu:7"], "tpu:7"),
    (["predict", "/no/such/photo.jpg"], "/no/such/photo.jpg"),
    (["predict", str(DOG), "--topk", "11"], "--topk"),
    (["predict", str(DOG), "--checkpoint", "/no/such.pt"], "/no/such.pt"),
    (["frobnicate"], "frobnicate"),
    ([], "required"),
])  # fmt: skip
def test_bad_cli_values_exit_2_naming_the_value(capsys, offline, args, message, run_cli):
    code, out, err = run_cli(*args)
    assert code == 2, (out, err)
    assert message in err and "error" in err
    assert "Traceback" not in out + err


def test_cli_bad_files_report_each_file_and_keep_going(tmp_path, capsys, tudui_ckpt, run_cli):
    bad = _bad_files(tmp_path)
    code, out, err = run_cli("predict", bad["truncated"], DOG, bad["text"],
                           "--checkpoint", tudui_ckpt)
    assert code == 2
    assert out.startswith(f"{DOG}: ") and out.count("\n") == 1  # the good photo still done
    assert str(bad["truncated"]) in err and str(bad["text"]) in err
    code, _, err = run_cli("predict", DOG, "--checkpoint", bad["text"])
    assert code == 2 and "not a readable PyTorch checkpoint" in err and "notes.jpg" in err


def test_real_cli_processes_end_without_traceback(tmp_path, cache_dir):
    """The command as a learner runs it: non-zero exit, one clear line, no traceback."""
    bad = _bad_files(tmp_path)
    env = {**os.environ, "COURSE_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT),
           "OMP_NUM_THREADS": "1"}
    cases = {  # a bad option value, and a bad file found while running
        ("train", "--lr", "-1"): "argument --lr",
        ("predict", str(bad["truncated"])): "half.jpg is not a readable image",
    }
    procs = {args: subprocess.Popen([sys.executable, "-m", "course_utils", *args], env=env,
                                    cwd=tmp_path, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for args in cases}
    for args, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, (args, out, err)
        assert cases[args] in err and "Traceback" not in out + err, (args, err)


# --------------------------------------------------------------------- never overwrite
def test_runs_never_overwrite_earlier_work(tmp_path, offline, capsys, run_cli):
    logs = tmp_path / "runs"
    args = ["train", "--epochs", "1", "--limit", "30", "--batch-size", "10", "--logdir", logs,
            "--run-name", "same", "--device", "cpu", "--no-progress"]
    assert run_cli(*args)[0] == 0
    (first,) = logs.iterdir()
    before = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    assert run_cli(*args)[0] == 0
    runs = sorted(logs.iterdir())
    assert len(runs) == 2 and all(r.name.endswith(("_same", "_same-2")) for r in runs)
    assert {p: p.read_bytes() for p in first.rglob("*") if p.is_file()} == before

    # the course's label layout keeps a label file the learner corrected
    layout = data.make_label_layout(data.HYMENOPTERA_SAMPLE / "val", tmp_path / "layout")
    label = layout / "ants_label" / "8398478_50ef10c47a.txt"
    label.write_text("ants, checked by hand", encoding="utf-8")
    data.make_label_layout(data.HYMENOPTERA_SAMPLE / "val", layout)
    assert label.read_text(encoding="utf-8") == "ants, checked by hand"
    assert np.array_equal(np.asarray(Image.open(layout / "ants_image" / "8398478_50ef10c47a.jpg")),
                          np.asarray(Image.open(data.HYMENOPTERA_SAMPLE / "val" / "ants" /
                                                "8398478_50ef10c47a.jpg")))


def test_readme_troubleshooting_covers_what_learners_meet(tmp_path):
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Troubleshooting\n", 1)[1]
    assert "\n## " not in section  # the last section
    for topic in ("localhost refused to connect", "127.0.0.1", "num_workers=0", "Windows",
                  "COURSE_OFFLINE=1", "COURSE_DATA_DIR", "weights_only=True",
                  "load_whole_model(path, trust=True)", "map_location=\"cpu\"", "--resume"):
        assert topic in section, topic
    # the messages it quotes are the ones the course really prints
    with pytest.raises(ValueError) as info:
        data.open_rgb(_bad_files(tmp_path)["text"])
    assert "is not a readable image (" in str(info.value)
    assert "Replace or delete the file." in str(info.value)
    assert "is not a readable image (…). Replace or delete the file." in section


# ------------------------------------------------- the learner's own files are read-only
TRAIN_SHORT = ["train", "--epochs", "1", "--limit", "20", "--batch-size", "10", "--device",
               "cpu", "--no-progress"]


def _jpg_archive(dest: Path, *extra: tuple[tarfile.TarInfo, bytes]) -> Path:
    """``dest/cifar10-jpg.tar.gz`` of a small image-folder copy, plus ``extra`` members."""
    src = jpg_copy(dest.parent / f"{dest.name}-src", 2)
    dest.mkdir()
    with tarfile.open(dest / "cifar10-jpg.tar.gz", "w:gz") as tar:
        tar.add(src / "cifar10-jpg", arcname="cifar10-jpg")
        for info, content in extra:
            tar.addfile(info, io.BytesIO(content))
    return dest / "cifar10-jpg.tar.gz"


def _train_on(folder: Path, how: str, run_cli, monkeypatch, tmp_path):
    """``train`` with the learner's ``folder`` named by --data-dir or COURSE_DATA_DIR."""
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    if how == "COURSE_DATA_DIR":
        monkeypatch.setenv("COURSE_DATA_DIR", str(folder))
        return run_cli(*TRAIN_SHORT, "--logdir", tmp_path / "runs")
    return run_cli(*TRAIN_SHORT, "--logdir", tmp_path / "runs", "--data-dir", folder)


def _one_line(err: str, *words: str) -> str:
    """The CLI's one error line, checked to hold each of ``words`` (any case)."""
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line, err
    assert line.startswith("python -m course_utils train: error: "), err
    for word in words:
        assert word.lower() in line.lower(), (word, line)
    return line


@pytest.mark.parametrize("how", ["--data-dir", "COURSE_DATA_DIR"])
def test_a_cut_short_archive_of_the_learner_is_reported_and_left_alone(
        tmp_path, monkeypatch, cache_dir, run_cli, how):
    archive = _jpg_archive(tmp_path / "mine")
    whole = archive.read_bytes()
    with open(archive, "r+b") as f:  # a copy that stopped half-way
        f.truncate(len(whole) // 2)
    before = snapshot(archive.parent)
    code, _, err = _train_on(archive.parent, how, run_cli, monkeypatch, tmp_path)
    assert code == 2
    _one_line(err, str(archive), "cut short", "copy it again")
    assert "download" not in err  # the learner's file: no "download it anew"
    assert snapshot(archive.parent) == before
    assert not (cache_dir / "cifar10-jpg").exists()
    assert not list(cache_dir.glob(".cifar10-jpg-*"))  # no half-unpacked temporary left


def _member(name: str, kind: str, size: int = 4, link: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = {"file": tarfile.REGTYPE, "symlink": tarfile.SYMTYPE, "hard link": tarfile.LNKTYPE,
                 "device": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}[kind]
    info.size, info.linkname = (size if kind == "file" else 0), link
    return info, b"x" * info.size


#: where an absolute member would land: named per process, so that an earlier run (or a
#: mutation run's mutant that let it through) cannot make this test fail or pass
ESCAPED = Path(tempfile.gettempdir()) / f"course-utils-absolute-escape-{os.getpid()}.txt"
HOSTILE = {  # what the member is → (the member, a word of the reason)
    "climbs out": (_member("../../escape.txt", "file"), ".."),
    "absolute path": (_member(str(ESCAPED), "file"), "absolute"),
    "symlink": (_member("cifar10-jpg/train/cat/link.jpg", "symlink", link="/etc/passwd"), "link"),
    "hard link": (_member("cifar10-jpg/train/cat/hard.jpg", "hard link",
                          link="cifar10-jpg/train/cat/x.jpg"), "link"),
    "device": (_member("cifar10-jpg/train/cat/dev", "device"), "device"),
    "fifo": (_member("cifar10-jpg/train/cat/pipe", "fifo"), "pipe"),
    "oversized": (_member("cifar10-jpg/train/cat/huge.jpg", "file", size=5000), "bytes"),
}


@pytest.mark.parametrize("kind", HOSTILE)
def test_a_hostile_archive_is_refused_naming_the_member_and_left_in_place(
        tmp_path, monkeypatch, cache_dir, run_cli, kind):
    member, why = HOSTILE[kind]
    ESCAPED.unlink(missing_ok=True)
    monkeypatch.setattr(archives, "MAX_MEMBER_BYTES", 4096)
    archive = _jpg_archive(tmp_path / "mine", member)
    before = snapshot(archive.parent)
    code, _, err = _train_on(archive.parent, "--data-dir", run_cli, monkeypatch, tmp_path)
    assert code == 2
    _one_line(err, str(archive), repr(member[0].name), why, "refused")
    assert snapshot(archive.parent) == before
    assert not (cache_dir / "cifar10-jpg").exists() and not list(cache_dir.glob(".cifar10-jpg-*"))
    assert not list(tmp_path.rglob("escape.txt"))
    assert not ESCAPED.exists()


HOSTILE_ZIP = {  # member name, its mode (0: a plain file), a word of the reason
    "climbs out": ("hymenoptera_data/../../evil.txt", 0, ".."),
    "absolute path": ("/evil.txt", 0, "absolute"),
    "symlink": ("hymenoptera_data/train/link", stat.S_IFLNK | 0o777, "link"),
    "fifo": ("hymenoptera_data/train/pipe", stat.S_IFIFO | 0o644, "device or pipe"),
    "oversized": ("hymenoptera_data/big", 0, "bytes"),
}


@pytest.mark.parametrize("kind", HOSTILE_ZIP)
def test_a_hostile_zip_is_refused_even_when_the_course_downloaded_it(tmp_path, monkeypatch,
                                                                     kind):
    archive = tmp_path / "hymenoptera_data.zip"
    name, mode, why = HOSTILE_ZIP[kind]
    monkeypatch.setattr(archives, "MAX_MEMBER_BYTES", 100)
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("hymenoptera_data/train/ants/a.jpg", b"photo")
        info = zipfile.ZipInfo(name)
        info.external_attr = mode << 16
        zf.writestr(info, b"/etc/passwd" if kind == "symlink" else b"x" * 200)
    before = snapshot(tmp_path)
    with pytest.raises(download.UnsafeArchiveError) as info:
        download.unpack_folder(archive, "hymenoptera_data", tmp_path / "out", downloaded=True)
    assert str(archive) in str(info.value) and repr(name) in str(info.value)
    assert why in str(info.value), str(info.value)
    assert snapshot(tmp_path) == before  # kept, although the course downloaded it
    assert not (tmp_path / "out" / "hymenoptera_data").exists()
    assert not list(tmp_path.rglob("evil.txt"))


def test_a_zip_with_folder_entries_is_not_hostile(tmp_path):
    """Zips made by most tools list each folder as an entry of its own: unpacked as usual."""
    archive = tmp_path / "hymenoptera_data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for folder in ("hymenoptera_data/", "hymenoptera_data/train/", "hymenoptera_data/val/"):
            zf.writestr(zipfile.ZipInfo(folder), b"")
        zf.writestr("hymenoptera_data/train/a.jpg", b"photo")
    folder = download.unpack_folder(archive, "hymenoptera_data", tmp_path / "out")
    assert (folder / "train" / "a.jpg").read_bytes() == b"photo" and (folder / "val").is_dir()


@pytest.mark.parametrize("how", ["--data-dir", "COURSE_DATA_DIR"])
def test_a_damaged_photo_in_the_learners_image_folder_is_named_and_left_alone(
        tmp_path, monkeypatch, cache_dir, run_cli, how):
    mine = jpg_copy(tmp_path / "mine", 2)
    victim = sorted((mine / "cifar10-jpg" / "train" / "dog").iterdir())[1]
    victim.write_bytes(victim.read_bytes()[:100])  # a copy that stopped half-way
    before = snapshot(mine)
    code, _, err = _train_on(mine, how, run_cli, monkeypatch, tmp_path)
    assert code == 2
    _one_line(err, str(victim.resolve()), "not a readable image", "replace")
    assert snapshot(mine) == before


@pytest.mark.parametrize("how", ["data_dir=", "COURSE_DATA_DIR"])
def test_a_damaged_ants_and_bees_folder_of_the_learner_is_reported_and_left_alone(
        tmp_path, monkeypatch, cache_dir, how):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    mine = tmp_path / "mine"
    shutil.copytree(data.HYMENOPTERA_SAMPLE, mine / "hymenoptera_data")
    folder = mine / "hymenoptera_data"
    sizes = {p.relative_to(folder).as_posix(): p.stat().st_size
             for p in folder.rglob("*") if p.is_file()}
    (folder / download.MANIFEST).write_text(json.dumps(sizes), encoding="utf-8")
    photo = sorted((folder / "train" / "bees").glob("*.jpg"))[0]
    photo.write_bytes(photo.read_bytes()[:100])  # the learner's copy got cut short
    before = snapshot(mine)
    if how == "COURSE_DATA_DIR":
        monkeypatch.setenv("COURSE_DATA_DIR", str(mine))
    with pytest.raises(download.DamagedInputError) as info:
        data.hymenoptera(data_dir=mine if how == "data_dir=" else None, verbose=False)
    text = str(info.value)
    assert str(folder.resolve()) in text and "cut short" in text and "copy" in text.lower()
    assert snapshot(mine) == before


def test_a_learners_folder_that_is_also_the_cache_is_never_cleaned_up(tmp_path, monkeypatch):
    """COURSE_DATA_DIR and COURSE_CACHE_DIR the same folder: what is damaged there is the
    learner's, so it is reported and left, not removed as the course's own copy."""
    mine = tmp_path / "mine"
    shutil.copytree(data.HYMENOPTERA_SAMPLE, mine / "hymenoptera_data")
    (mine / "hymenoptera_data" / download.MANIFEST).write_text('{"train/ants/gone.jpg": 5}',
                                                               encoding="utf-8")
    _jpg_archive(tmp_path / "src")
    shutil.copy2(tmp_path / "src" / "cifar10-jpg.tar.gz", mine / "cifar10-jpg.tar.gz")
    (mine / "cifar10-jpg" / "test").mkdir(parents=True)  # the learner's half copy, no train/
    (mine / "cifar10-jpg" / download.MANIFEST).write_text('{"test/x.jpg": 5}', encoding="utf-8")
    for name in ("COURSE_DATA_DIR", "COURSE_CACHE_DIR"):
        monkeypatch.setenv(name, str(mine))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    before = snapshot(mine)
    with pytest.raises(download.DamagedInputError, match="gone.jpg"):
        data.hymenoptera(verbose=False)
    with pytest.raises(download.DamagedInputError, match="x.jpg"):
        data.cifar10(train=False, verbose=False)
    assert snapshot(mine) == before
