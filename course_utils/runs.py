"""Run folders: every run (TensorBoard logs, checkpoints, a notebook's files) gets a new one,
so nothing earlier is overwritten.

>>> # new_run_dir("runs", "p7")   →   PosixPath('runs/20250101-120000_p7')
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path


def new_run_dir(base: str | os.PathLike = "runs", name: str | None = None) -> Path:
    """Create and return a new folder ``base/<date>-<time>[_name]`` (``-2``, ``-3`` … if taken)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    stem = f"{stamp}_{name}" if name else stamp
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    for i in range(1, 1000):
        path = base / (stem if i == 1 else f"{stem}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a new run folder under {base}: {stem} to "
                          f"{stem}-999 all exist. Delete old runs or pick another name.")
