"""Chapters 1–5: the facts the notebooks teach (on the bundled real data), and that the
exercises answer typical mistakes with the right explanation (the notebooks' structure:
test_notebook_structure.py)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torch.utils.tensorboard import SummaryWriter
from torchvision import transforms

from course_utils import data, tb
from course_utils.exercises import chapter

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {
    1: ("01_python_tools.ipynb", "(P4)"),
    2: ("02_dataset.ipynb", "(P5–P6)"),
    3: ("03_tensorboard.ipynb", "(P7–P8)"),
    4: ("04_transforms.ipynb", "(P10–P13)"),
    5: ("05_datasets_dataloader.ipynb", "(P14–P15)"),
}


def _feedback(ex, answer, capsys) -> str:
    assert not ex.check(answer)
    return capsys.readouterr().out


# ------------------------------------------------------------------------- notebooks
def test_notebooks_cover_the_issue_items():
    text = {n: "\n".join(c.source for c in nbformat.read(ROOT / "notebooks" / name, 4).cells)
            for n, (name, _) in NOTEBOOKS.items()}
    assert "help(torch.cuda.is_available)" in text[1]
    assert "hint, not a law" in text[1] and "lru_cache" in text[1]
    for needle in ("class MyData(Dataset)", "ants_dataset + bees_dataset", "ants_label",
                   "数据集", "imageNotFound.gif", "data.photo_files", "data.open_rgb",
                   "help(Dataset)", "sorted(os.listdir(self.path))", '.convert("RGB")',
                   'encoding="utf-8"'):
        assert needle in text[2], needle
    for needle in ('add_scalar("y=x", i, i)', 'add_scalar("y=2x", 2 * i, i)',
                   'dataformats="HWC"', "add_images", "--port", "tb.show(logdir)",
                   "tensorboard —logdir=logs", "em-dash", "images/tensorboard_scalars.png"):
        assert needle in text[3], needle
    for needle in ("class Person", "ToTensor()", "Normalize(", "Resize((512, 512))",
                   "Resize(512)", "Compose(", "RandomCrop(", "TransformsPlayground",
                   "pg.render(", "print(type(tensor_img), tensor_img.shape, tensor_img.dtype",
                   "clamp(0, 1)", "TensorBoard stored"):
        assert needle in text[4], needle
    for needle in ("CIFAR10(root=root, train=True, transform=dataset_transform, download=True)",
                   "choose_cifar10(", "pin_memory=use_gpu", "persistent_workers=num_workers > 0",
                   "print(raw_set[0])", ".classes", "batch_size=64", "shuffle=True",
                   "num_workers", "drop_last=True", "10_000", 'add_images(f"Epoch: {epoch}"',
                   "safe_num_workers"):
        assert needle in text[5], needle


# ------------------------------------------------------------------------- facts taught
def test_ants_folder_has_a_gif_that_the_fixed_dataset_skips(capsys):
    folder = data.HYMENOPTERA_SAMPLE / "train" / "ants"
    names = sorted(p.name for p in folder.iterdir())
    assert "imageNotFound.gif" in names
    with Image.open(folder / "imageNotFound.gif") as gif:
        assert gif.mode == "P"
        assert transforms.ToTensor()(gif).shape[0] == 1  # would break batching
    photos = data.photo_files(folder)
    assert "skipped 1 non-photo file(s): imageNotFound.gif" in capsys.readouterr().out
    assert len(photos) == len(names) - 1
    assert all(data.open_rgb(p).mode == "RGB" for p in photos[:3])


def test_label_layout_under_a_chinese_path(tmp_path):
    root = data.make_label_layout(data.HYMENOPTERA_SAMPLE / "train", tmp_path / "数据集" / "train")
    ants = data.photo_files(root / "ants_image", verbose=False)
    label_file = root / "ants_label" / (ants[0].stem + ".txt")
    assert label_file.read_text(encoding="utf-8") == "ants"
    assert data.open_rgb(ants[0]).size[0] > 0


def test_photo_0013035_shape_and_hwc_logging(tmp_path):
    arr = np.array(Image.open(data.HYMENOPTERA_SAMPLE / "train" / "ants" / "0013035.jpg"))
    assert arr.shape == (512, 768, 3)
    with SummaryWriter(str(tmp_path)) as writer:
        writer.add_image("test", arr, 1, dataformats="HWC")
        for i in range(100):
            writer.add_scalar("y=2x", 2 * i, i)
    logged = tb.read_scalars(tmp_path)["y=2x"]
    assert all(v == 2 * s for s, v in logged) and len(logged) == 100
    assert tb.read_images(tmp_path)["test"][0][1].shape == (512, 768, 3)


def test_dataloader_batches_on_the_cifar_sample(cache_dir):
    test_set = data.cifar10(train=False, transform=transforms.ToTensor(), verbose=False)
    n = len(test_set)
    keep = list(DataLoader(test_set, batch_size=64, drop_last=False))
    drop = DataLoader(test_set, batch_size=64, drop_last=True)
    assert len(keep) == -(-n // 64) and len(keep[-1][0]) == (n % 64 or 64)
    assert len(drop) == n // 64
    imgs, targets = keep[0]
    assert imgs.shape == (64, 3, 32, 32) and imgs.dtype == torch.float32
    assert targets.dtype == torch.int64 and 0 <= int(targets.min()) <= int(targets.max()) < 10
    assert len(list(DataLoader(range(10_000), batch_size=64))[-1]) == 10_000 - 64 * 156


# ------------------------------------------------------------------------- exercise feedback
def test_ex1_called_function_is_explained(capsys):
    out = _feedback(chapter(1).q2, torch.cuda.is_available(), capsys)
    assert "leave out the ()" in out


def test_ex2_dataset_that_keeps_the_gif_is_explained(capsys):
    class ListsEverything(Dataset):
        def __init__(self, folder):
            self.files = sorted(Path(folder).iterdir())

        def __getitem__(self, idx):
            return data.open_rgb(self.files[idx]), Path(self.files[idx]).parent.name

        def __len__(self):
            return len(self.files)

    out = _feedback(chapter(2).q1, ListsEverything, capsys)
    assert "imageNotFound.gif" in out


def test_ex3_the_courses_3x_cell_is_rejected(tmp_path, capsys):
    with SummaryWriter(str(tmp_path)) as writer:
        for i in range(100):
            writer.add_scalar("y=2x", 3 * i, i)
    out = _feedback(chapter(3).q1, str(tmp_path), capsys)
    assert "3*i" in out


def test_ex3_rerun_into_the_same_folder_is_rejected(tmp_path, capsys):
    for _ in range(2):
        with SummaryWriter(str(tmp_path)) as writer:
            for i in range(100):
                writer.add_scalar("y=2x", 2 * i, i)
    out = _feedback(chapter(3).q1, tmp_path, capsys)
    assert "fresh folder" in out


def test_ex4_tuple_resize_is_explained(capsys):
    squash = transforms.Compose([transforms.Resize((64, 64)), transforms.RandomCrop(48),
                                 transforms.ToTensor()])
    assert "aspect ratio" in _feedback(chapter(4).q3, squash, capsys)


def test_ex5_forgetting_the_partial_batch_is_explained(capsys):
    assert re.search(r"partial", _feedback(chapter(5).q1, (156, 16), capsys))


def test_ch1_the_dunder_rule_has_counter_examples():
    """What chapter 1 shows: only dunder names yet not callable, and a function with public
    names."""
    import functools

    plain = object()
    assert all(n.startswith("__") for n in dir(plain)) and not callable(plain)
    cached = functools.lru_cache(maxsize=None)(abs)
    assert {"cache_info", "cache_clear"} <= set(dir(cached)) and callable(cached)


def test_ex1_public_names_that_keep_dunders_are_explained(capsys):
    def keeps_dunders(obj):
        return sorted(n for n in dir(obj) if not n.startswith("__"))

    assert "starts with '_'" in _feedback(chapter(1).q4, keeps_dunders, capsys)


def test_ex2_label_dataset_that_keeps_the_line_break_is_explained(capsys):
    class NoStrip(Dataset):
        def __init__(self, root_dir, image_dir, label_dir, transform=None):
            self.images, self.labels = Path(root_dir) / image_dir, Path(root_dir) / label_dir
            self.files = sorted(p for p in self.images.iterdir() if p.suffix == ".jpg")

        def __getitem__(self, idx):
            label = (self.labels / (self.files[idx].stem + ".txt")).read_text(encoding="utf-8")
            return Image.open(self.files[idx]).convert("RGB"), label

        def __len__(self):
            return len(self.files)

    assert ".strip()" in _feedback(chapter(2).q3, NoStrip, capsys)


def test_ch3_the_em_dash_command_from_the_notes_is_refused_by_tensorboard():
    import subprocess
    import sys

    code = ("import sys; from tensorboard.main import run_main; "
            "sys.argv[1:] = ['—logdir=logs']; run_main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert "invalid choice: '—logdir=logs'" in done.stderr, done.stderr[-500:]


def test_ex3_numpy_photo_without_dataformats_is_explained(capsys):
    def no_dataformats(logdir, tensor_chw, array_hwc):
        with SummaryWriter(logdir) as writer:
            writer.add_image("tensor", tensor_chw, 0)
            writer.add_image("array", array_hwc, 0)

    assert "dataformats='HWC'" in _feedback(chapter(3).q3, no_dataformats, capsys)


def test_ch4_tensorboard_clips_a_normalized_ramp_to_black_not_pale(tmp_path):
    ramp = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]).expand(3, 1, 5)
    normalized = transforms.Normalize([0.5] * 3, [0.5] * 3)(ramp)
    with SummaryWriter(str(tmp_path)) as writer:
        writer.add_image("ramp", normalized, 0)
    stored = tb.read_images(tmp_path)["ramp"][0][1][0, :, 0] / 255
    assert np.allclose(stored, [0, 0, 0, 0.5, 1], atol=1 / 255)


def test_ex4_pipeline_that_crops_before_resizing_is_explained(capsys):
    wrong = transforms.Compose([transforms.RandomCrop(48), transforms.Resize(64),
                                transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)])
    assert "resize first, then crop" in _feedback(chapter(4).q3, wrong, capsys)


def test_ch5_every_loader_with_num_workers_0_says_why():
    nb = nbformat.read(ROOT / "notebooks" / NOTEBOOKS[5][0], as_version=4)
    for cell in nb.cells:
        code = cell.source if cell.cell_type == "code" else ""
        if "num_workers=0" in code and "try:" not in code:
            assert "as in the course" in code or "the course's settings" in code


def test_ex5_prediction_that_keeps_the_partial_batch_with_drop_last_is_explained(capsys):
    def ignores_drop_last(n, batch_size, drop_last):
        full, rest = divmod(n, batch_size)
        return (full + (rest > 0), rest or batch_size)

    assert "partial batch is gone" in _feedback(chapter(5).q3, ignores_drop_last, capsys)
