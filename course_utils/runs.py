"""Run folders: every run (TensorBoard logs, checkpoints, a notebook's files) gets a new one,
so nothing earlier is overwritten.

>>> # new_run_dir("runs", "p7")   →   PosixPath('runs/20250101-120000_p7')
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

from course_utils.files import writing
from course_utils.i18n import tr


def new_run_dir(base: str | os.PathLike = "runs", name: str | None = None) -> Path:
    """Create and return a new folder ``base/<date>-<time>[_name]`` (``-2``, ``-3`` … if taken).

    A full disk or read-only ``base`` raises :class:`course_utils.files.WriteError`."""
    with writing(base):
        return _new_folder(Path(base), name)


def _new_folder(base: Path, name: str | None) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    stem = f"{stamp}_{name}" if name else stamp
    base.mkdir(parents=True, exist_ok=True)
    for i in range(1, 1000):
        path = base / (stem if i == 1 else f"{stem}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(tr(f"could not create a new run folder under {base}: {stem} to "
                             f"{stem}-999 all exist. Delete old runs or pick another name."))
