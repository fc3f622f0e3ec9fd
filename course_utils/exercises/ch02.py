"""Chapter 2 (P5–P6): writing a Dataset over an image folder."""

from torch.utils.data import ConcatDataset, Dataset

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
    hint_text="data.photo_files(folder) lists the photos and skips the GIF; data.open_rgb(path) "
    "opens one as RGB; os.path.basename(folder) is the label.",
    solution_code="""
        import os
        from torch.utils.data import Dataset
        from course_utils import data

        class PhotoFolder(Dataset):
            def __init__(self, folder):
                self.files = data.photo_files(folder, verbose=False)
                self.label = os.path.basename(os.path.normpath(folder))

            def __getitem__(self, idx):
                return data.open_rgb(self.files[idx]), self.label

            def __len__(self):
                return len(self.files)

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
    "`ants + bees` works because Dataset defines __add__. Which class does it return? "
    "Assign the class (not its name) to `answer`.",
    _check_q2,
    hint_text="print(type(ants + bees)); it lives in torch.utils.data.",
    solution_code="""
        from torch.utils.data import ConcatDataset
        answer = ConcatDataset
    """,
    wrong=[Dataset, list, "ConcatDataset", tuple],
)
