"""Chapter 2 (P5–P6): writing a Dataset over an image folder."""

import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import ConcatDataset, DataLoader, Dataset
from torchvision import transforms

from course_utils import data
from course_utils.exercises import Exercise, _short, call, expect
from course_utils.exercises.i18n import N_


def _photo_dataset_checks(cls):
    expect(isinstance(cls, type), f"`answer` should be a class (no parentheses), got "
           f"{type(cls).__name__}.")
    expect(issubclass(cls, Dataset), "your class should inherit from torch.utils.data.Dataset.")
    root = data.HYMENOPTERA_SAMPLE / "train"
    for label in ("ants", "bees"):
        folder = root / label
        photos = data.photo_files(folder, verbose=False)
        ds = call(f"{cls.__name__}({str(folder)!r})", cls, str(folder))
        size = call(f"len({cls.__name__}({str(folder)!r}))", len, ds)
        expect(size == len(photos),
               f"len() on {folder} gives {size}, but it holds {len(photos)} photos "
               "(non-photo files such as imageNotFound.gif must be left out).")
        item = call(f"ds[{size - 1}]", ds.__getitem__, size - 1)
        expect(isinstance(item, (tuple, list)) and len(item) == 2,
               f"an item should be a pair (image, label), got {_short(item)}.")
        img, lab = item
        expect(getattr(img, "mode", None) == "RGB",
               f"item images should be PIL RGB images, got {type(img).__name__} "
               f"mode {getattr(img, 'mode', None)}.")
        expect(lab == label, f"the label of an item in {folder} should be {label!r}, got {lab!r}.")


class _KeepsGif(Dataset):
    """Wrong on purpose: lists every file, GIF included."""

    def __init__(self, folder):
        import os

        self.folder, self.names = folder, sorted(os.listdir(folder))

    def __getitem__(self, idx):
        import os

        return data.open_rgb(os.path.join(self.folder, self.names[idx])), os.path.basename(
            self.folder)

    def __len__(self):
        return len(self.names)


q1 = Exercise(
    "2.1",
    "Write a Dataset class `PhotoFolder(folder)` whose items are (RGB PIL image, name of the "
    "folder, e.g. 'ants') and which leaves out non-photo files; assign the CLASS to `answer`.",
    _photo_dataset_checks,
    hint_text="sorted(os.listdir(folder)), keep names whose os.path.splitext(name)[1].lower() "
    "is '.jpg' (or another photo suffix); Image.open(path).convert('RGB') opens one as RGB; "
    "os.path.basename(folder) is the label.",
    solution_code="""
        import os
        from PIL import Image
        from torch.utils.data import Dataset

        class PhotoFolder(Dataset):
            def __init__(self, folder):
                self.folder = folder
                self.names = sorted(n for n in os.listdir(folder)
                                    if n.lower().endswith((".jpg", ".jpeg", ".png")))
                self.label = os.path.basename(os.path.normpath(folder))

            def __getitem__(self, idx):
                path = os.path.join(self.folder, self.names[idx])
                with Image.open(path) as img:
                    return img.convert("RGB"), self.label

            def __len__(self):
                return len(self.names)

        answer = PhotoFolder
    """,
    wrong=[_KeepsGif, Dataset, 16],
    time_limit=20.0,  # it opens (and re-saves) photos
)


def _check_q2(answer):
    expect(isinstance(answer, type), f"give the class itself, got {_short(answer)}.")
    expect(answer is ConcatDataset,
           f"{answer.__name__} is not it: print(type(ants + bees)) shows the class that "
           "Dataset.__add__ returns.")


q2 = Exercise(
    "2.2",
    "`ants + bees` works because `Dataset` defines `__add__`. Which class does it return? "
    "Assign the class (not its name) to `answer`.",
    _check_q2,
    hint_text="print(type(ants + bees)); it lives in torch.utils.data.",
    solution_code="""
        from torch.utils.data import ConcatDataset
        answer = ConcatDataset
    """,
    wrong=[Dataset, list, "ConcatDataset", tuple],
)


# ----------------------------------------------------------------------------- 2.3
_SPEC = transforms.Compose([transforms.Resize((40, 40)), transforms.ToTensor()])


def _label_layout(root: Path) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """The checker's own layout: ants AND bees mixed in one image folder, each label only in
    its text file (with a trailing newline), a non-photo file beside them. Returns
    ({photo name: label}, {photo name: its pixels as decoded})."""
    images, labels = root / "mixed_image", root / "mixed_label"
    images.mkdir(parents=True)
    labels.mkdir()
    truth, pixels = {}, {}
    for label in ("ants", "bees"):
        for src in data.photo_files(data.HYMENOPTERA_SAMPLE / "val" / label, verbose=False)[:3]:
            name = f"{label[0]}_{src.name}"
            with Image.open(src) as img:  # re-saved small: the checker stays fast
                img.convert("RGB").resize((48, 36)).save(images / name)
            with Image.open(images / name) as img:
                pixels[name] = np.asarray(img.convert("RGB"))
            (labels / (Path(name).stem + ".txt")).write_text(label + "\n", encoding="utf-8")
            truth[name] = label
    (images / "README.txt").write_text("not a photo", encoding="utf-8")
    return truth, pixels


def _which_photo(img: Image.Image, pixels: dict[str, np.ndarray]) -> str | None:
    """The name of the checker's photo that ``img`` shows (None: none of them)."""
    arr = np.asarray(img)
    return next((name for name, p in pixels.items()
                 if p.shape == arr.shape and np.array_equal(p, arr)), None)


def _check_q3(cls):
    expect(isinstance(cls, type) and issubclass(cls, Dataset),
           f"`answer` should be your Dataset class (no parentheses), got {_short(cls)}.")
    with tempfile.TemporaryDirectory(prefix="ex2_3_") as tmp:
        root = Path(tmp) / "数据集" / "train"
        truth, pixels = _label_layout(root)
        made = f"{cls.__name__}(root_dir, 'mixed_image', 'mixed_label')"
        ds = call(made, cls, str(root), "mixed_image", "mixed_label")
        size = call(f"len({made})", len, ds)
        expect(size == len(truth), f"len() gives {size}, but the image folder holds "
               f"{len(truth)} photos and one README.txt that is not a photo.")
        labels = []
        for i in range(size):
            item = call(f"ds[{i}]", ds.__getitem__, i)
            expect(isinstance(item, (tuple, list)) and len(item) == 2,
                   f"item {i} should be a pair (image, label), got {_short(item)}.")
            img, label = item
            expect(isinstance(img, Image.Image) and img.mode == "RGB",
                   f"item {i}: the image should be a PIL image in mode RGB, got "
                   f"{type(img).__name__} {getattr(img, 'mode', '')}.")
            expect(isinstance(label, str) and label in ("ants", "bees"),
                   f"item {i}: the label should be the text of its label file ('ants' or "
                   f"'bees'), got {label!r} — read the .txt file with the photo's name, and "
                   ".strip() the line break.")
            name = _which_photo(img, pixels)
            expect(name is not None, f"item {i}: the image is none of the photos in the "
                   "image folder — open the file as it is, convert('RGB'), nothing more.")
            expect(label == truth[name],
                   f"item {i} is the photo {name} with the label {label!r}, but its label "
                   f"file {Path(name).stem}.txt says {truth[name]!r}: take each photo's label "
                   "from the file with the same name (two os.listdir() lists are not in the "
                   "same order, so pairing them by index mixes labels up).")
            labels.append(label)
        with_transform = call(f"{cls.__name__}(root_dir, 'mixed_image', 'mixed_label', "
                              "transform=...)", cls, str(root), "mixed_image", "mixed_label",
                              transform=_SPEC)
        first = call(N_("ds[0] with a transform"), with_transform.__getitem__, 0)
        expect(isinstance(first[0], torch.Tensor),
               "with transform=Compose([Resize((40, 40)), ToTensor()]) an item's image should "
               f"be a tensor, got {type(first[0]).__name__}: apply self.transform to the "
               "image in __getitem__.")
        loader = DataLoader(with_transform, batch_size=4)
        imgs, batch_labels = call("next(iter(DataLoader(ds, batch_size=4)))",
                                  lambda: next(iter(loader)))
        expect(isinstance(imgs, torch.Tensor) and tuple(imgs.shape) == (4, 3, 40, 40),
               "with transform=Compose([Resize((40, 40)), ToTensor()]) a DataLoader batch of 4 "
               f"should be (4, 3, 40, 40), got {tuple(getattr(imgs, 'shape', ()))}: apply "
               "self.transform to the image in __getitem__.")
        expect(list(batch_labels) == labels[:4], "the batch's labels are not those of items 0–3.")


class _FolderNameLabels(Dataset):
    """Wrong on purpose: labels every item by the image folder's name."""

    def __init__(self, root_dir, image_dir, label_dir, transform=None):
        import os

        self.dir = os.path.join(root_dir, image_dir)
        self.names = sorted(n for n in os.listdir(self.dir) if n.endswith(".jpg"))
        self.image_dir, self.transform = image_dir, transform

    def __getitem__(self, idx):
        import os

        img = Image.open(os.path.join(self.dir, self.names[idx])).convert("RGB")
        return (self.transform(img) if self.transform else img), self.image_dir

    def __len__(self):
        return len(self.names)


class _NoStrip(_FolderNameLabels):
    """Wrong on purpose: reads the label file but keeps its line break."""

    def __init__(self, root_dir, image_dir, label_dir, transform=None):
        import os

        super().__init__(root_dir, image_dir, label_dir, transform)
        self.label_dir = os.path.join(root_dir, label_dir)

    def __getitem__(self, idx):
        import os

        img, _ = super().__getitem__(idx)
        stem = os.path.splitext(self.names[idx])[0]
        with open(os.path.join(self.label_dir, stem + ".txt"), encoding="utf-8") as f:
            return img, f.read()


class _PairedByIndex(_FolderNameLabels):
    """Wrong on purpose: lists the label folder on its own and pairs the two lists by index
    (os.listdir() promises no order; here the label list comes out reversed)."""

    def __init__(self, root_dir, image_dir, label_dir, transform=None):
        import os

        super().__init__(root_dir, image_dir, label_dir, transform)
        self.label_dir = os.path.join(root_dir, label_dir)
        self.label_files = sorted(os.listdir(self.label_dir), reverse=True)

    def __getitem__(self, idx):
        import os

        img, _ = super().__getitem__(idx)
        with open(os.path.join(self.label_dir, self.label_files[idx]), encoding="utf-8") as f:
            return img, f.read().strip()


q3 = Exercise(
    "2.3",
    "Write a Dataset class `LabelFileDataset(root_dir, image_dir, label_dir, transform=None)` "
    "for the second layout: photos in `root_dir/image_dir/`, and the label of `x.jpg` as "
    "the text in `root_dir/label_dir/x.txt`. Items are `(image, label)`: the image opened as "
    "RGB (with `transform` applied when one is given), the label the file's text without "
    "its line break. Leave out files that are not photos. The checker builds a folder of its "
    "own (ants and bees mixed in one folder), indexes your data set, and batches it with a "
    "DataLoader. Assign the class to `answer`.",
    _check_q3,
    hint_text="In __init__: sorted(os.listdir(...)) filtered by suffix. In __getitem__: "
    "os.path.splitext(name)[0] + '.txt' is the label file; open(..., encoding='utf-8')"
    ".read().strip() is the label.",
    solution_code="""
        import os
        from PIL import Image
        from torch.utils.data import Dataset

        class LabelFileDataset(Dataset):
            def __init__(self, root_dir, image_dir, label_dir, transform=None):
                self.image_path = os.path.join(root_dir, image_dir)
                self.label_path = os.path.join(root_dir, label_dir)
                self.names = sorted(n for n in os.listdir(self.image_path)
                                    if n.lower().endswith((".jpg", ".jpeg", ".png")))
                self.transform = transform

            def __getitem__(self, idx):
                name = self.names[idx]
                img = Image.open(os.path.join(self.image_path, name)).convert("RGB")
                label_file = os.path.join(self.label_path, os.path.splitext(name)[0] + ".txt")
                with open(label_file, encoding="utf-8") as f:
                    label = f.read().strip()
                if self.transform is not None:
                    img = self.transform(img)
                return img, label

            def __len__(self):
                return len(self.names)

        answer = LabelFileDataset
    """,
    wrong=[_FolderNameLabels, _NoStrip, _PairedByIndex, Dataset, "LabelFileDataset"],
    time_limit=20.0,  # it opens (and re-saves) photos
)
