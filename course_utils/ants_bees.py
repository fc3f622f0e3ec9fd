"""The ants-and-bees set (P6–P8): the folder :func:`hymenoptera` finds, downloads or falls back
to (the bundled sample), and :func:`make_label_layout`, the course's second folder layout.
Both are importable from :mod:`course_utils.data` too, where the chapters use them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from course_utils import download as dl
from course_utils import settings
from course_utils.i18n import N_, tr
from course_utils.sources import _data_folder, _root_folder, _say

HYMENOPTERA_SAMPLE = settings.BUNDLED_DATA / "hymenoptera_sample"
HYMENOPTERA_URL = "https://download.pytorch.org/tutorial/hymenoptera_data.zip"
#: download.tree_sha256 of the full set's folder (398 photos).
HYMENOPTERA_TREE_SHA256 = "4d9516c2fb161c30f41a394c6690b6c88f5c14ffbacac3cef9ddb3412df91248"


def hymenoptera(root: str | os.PathLike | None = None, download: bool = True,
                verbose: bool = True, data_dir: str | os.PathLike | None = None) -> Path:
    """Folder of the ants-and-bees set, holding ``train/{ants,bees}`` and ``val/{ants,bees}``.

    Order: ``root/hymenoptera_data`` → ``data_dir/hymenoptera_data`` (None: ``COURSE_DATA_DIR``)
    → the PyTorch tutorial download (checked file by file against the known set) → the bundled
    sample. ``root`` defaults to the course cache, where a damaged copy is removed and made
    again; a ``root`` of the learner's is only read and added to (a damaged folder or archive
    there raises :class:`course_utils.download.DamagedInputError` and is left as it is).
    """
    root, mine = _root_folder(root)
    base = _data_folder(data_dir)
    mine = mine or (base is not None and base.resolve() == root.resolve())  # the learner's
    found = (_hymenoptera_own(root) if mine else _hymenoptera_cached(root)) \
        or _hymenoptera_own(base)
    if found is not None:
        _say(verbose, f"ants/bees: {found}")
        return found
    if mine and (half := root / "hymenoptera_data").exists():  # no train/: half a copy
        raise dl.DamagedInputError(tr(f"{half} has no train/ folder; it was left as it is. "
                                      "Copy the folder again (all of it) and run again."))
    why = "COURSE_OFFLINE=1" if settings.offline() else "download=False"
    for attempt in (1, 2) if download and not settings.offline() else ():
        try:
            archive = root / "hymenoptera_data.zip"
            # an archive already in the learner's folder is theirs: checked, never deleted
            fresh = not (mine and archive.is_file())
            if fresh:
                archive = dl.download(HYMENOPTERA_URL, archive)
            folder = dl.unpack_folder(archive, "hymenoptera_data", root, HYMENOPTERA_TREE_SHA256,
                                      downloaded=fresh)
            _say(verbose, f"ants/bees: downloaded to {folder}")
            return folder
        except dl.ChecksumError as exc:  # a damaged archive was deleted: download it again
            if attempt == 2:
                raise  # the server itself sends a wrong file
            print(f"[course_utils] {exc}")
        except dl.OfflineError as exc:
            why = N_(f"no download ({exc})")
            break
    _say(verbose, f"ants/bees: bundled sample {HYMENOPTERA_SAMPLE} [{why}]. "
         "For all 398 images go online or set COURSE_DATA_DIR.")
    return HYMENOPTERA_SAMPLE


def _hymenoptera_cached(root: Path) -> Path | None:
    """``root/hymenoptera_data`` when complete; a damaged copy (the course's own) is removed."""
    folder = root / "hymenoptera_data"
    if not (folder / "train").is_dir():
        return None
    if (damage := dl.check_unpacked(folder)) is not None:
        print("[course_utils] " + tr(f"the unpacked copy {folder} is damaged ({damage}); "
                                     "it was removed and is made again."))
        dl.discard(folder)
        return None
    return folder


def _hymenoptera_own(base: Path | None) -> Path | None:
    """``base/hymenoptera_data`` of the learner's folder; a damaged one is reported (and left
    as it is) with :class:`course_utils.download.DamagedInputError`."""
    folder = base / "hymenoptera_data" if base is not None else None
    if folder is None or not (folder / "train").is_dir():
        return None
    if (damage := dl.check_unpacked(folder)) is not None:
        raise dl.DamagedInputError(tr(f"{folder} is damaged ({damage}); it was left as it "
                                      "is. Copy the folder again (all of it) and run again."))
    return folder


def make_label_layout(split_dir: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy ``split_dir/{ants,bees}`` into the course's second layout under ``dest``:
    ``ants_image/``, ``ants_label/<name>.txt`` (holding ``ants``), and the same for bees.

    Returns ``dest``. Existing files are left as they are (nothing is overwritten).
    """
    split_dir, dest = Path(split_dir), Path(dest)
    for label in ("ants", "bees"):
        img_dir, lab_dir = dest / f"{label}_image", dest / f"{label}_label"
        img_dir.mkdir(parents=True, exist_ok=True)
        lab_dir.mkdir(parents=True, exist_ok=True)
        for src in sorted((split_dir / label).iterdir()):
            if not (img_dir / src.name).exists():
                shutil.copy2(src, img_dir / src.name)
            txt = lab_dir / (src.stem + ".txt")
            if not txt.exists():
                txt.write_text(label, encoding="utf-8")
    return dest
