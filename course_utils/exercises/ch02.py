"""Chapter 2 (P5–P6): writing a Dataset over an image folder."""

import tempfile
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import ConcatDataset, DataLoader, Dataset
from torchvision import transforms

from course_utils import data
from course_utils.exercises import Exercise, expect


def _photo_dataset_checks(cls):
    expect(isinstance(cls, type), f"`answer` should be a class (no parentheses), got "
           f"{type(cls).__name__}.")
    expect(issubclass(cls, Dataset), "your class should inherit from torch.utils.data.Dataset.")
    root = data.HYMENOPTERA_SAMPLE / "train"
    for label in ("ants", "bees"):
        folder = root / label
        photos = data.photo_files(folder, verbose=False)
        ds = cls(str(folder))
        expect(len(ds) == len(photos),
               f"len() on {folder} gives {len(ds)}, but it holds {len(photos)} photos "
               "(non-photo files such as imageNotFound.gif must be left out).")
        img, lab = ds[len(ds) - 1]
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
)


def _check_q2(answer):
    expect(isinstance(answer, type), f"give the class itself, got {answer!r}.")
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


def _label_layout(root: Path) -> dict[str, str]:
    """The checker's own layout: ants AND bees mixed in one image folder, each label only in
    its text file (with a trailing newline), a non-photo file beside them. Returns
    {photo name: label}."""
    images, labels = root / "mixed_image", root / "mixed_label"
    images.mkdir(parents=True)
    labels.mkdir()
    truth = {}
    for label in ("ants", "bees"):
        for src in data.photo_files(data.HYMENOPTERA_SAMPLE / "val" / label, verbose=False)[:3]:
            name = f"{label[0]}_{src.name}"
            with Image.open(src) as img:  # re-saved small: the checker stays fast
                img.convert("RGB").resize((48, 36)).save(images / name)
            (labels / (Path(name).stem + ".txt")).write_text(label + "\n", encoding="utf-8")
            truth[name] = label
    (images / "README.txt").write_text("not a photo", encoding="utf-8")
    return truth


def _check_q3(cls):
    expect(isinstance(cls, type) and issubclass(cls, Dataset),
           f"`answer` should be your Dataset class (no parentheses), got {cls!r:.60}.")
    with tempfile.TemporaryDirectory(prefix="ex2_3_") as tmp:
        root = Path(tmp) / "数据集" / "train"
        truth = _label_layout(root)
        ds = cls(str(root), "mixed_image", "mixed_label")
        expect(len(ds) == len(truth), f"len() gives {len(ds)}, but the image folder holds "
               f"{len(truth)} photos and one README.txt that is not a photo.")
        labels = []
        for i in range(len(ds)):
            img, label = ds[i]
            expect(isinstance(img, Image.Image) and img.mode == "RGB",
                   f"item {i}: the image should be a PIL image in mode RGB, got "
                   f"{type(img).__name__} {getattr(img, 'mode', '')}.")
            expect(isinstance(label, str) and label in ("ants", "bees"),
                   f"item {i}: the label should be the text of its label file ('ants' or "
                   f"'bees'), got {label!r} — read the .txt file with the photo's name, and "
                   ".strip() the line break.")
            labels.append(label)
        expect(sorted(labels) == sorted(truth.values()),
               f"labels {sorted(labels)} do not match the label files.")
        with_transform = cls(str(root), "mixed_image", "mixed_label", transform=_SPEC)
        loader = DataLoader(with_transform, batch_size=4)
        imgs, batch_labels = next(iter(loader))
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
    wrong=[_FolderNameLabels, _NoStrip, Dataset, "LabelFileDataset"],
)
