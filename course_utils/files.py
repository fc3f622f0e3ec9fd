"""Atomic file writes: a reader sees the old file or the complete new one, never half a file.

>>> import torch, tempfile
>>> path = atomic_save({"w": torch.ones(2)}, tempfile.mkdtemp() + "/last.pt")
>>> path.name
'last.pt'
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(f)`` on a binary file beside ``path``, fsync, then rename over ``path``.

    A reader sees either the old file or the complete new one, never a half-written file —
    even if the process is killed (SIGKILL, power loss) mid-write. The temporary file is this
    process's own, so two processes writing the same ``path`` end with one complete copy.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` through :func:`atomic_write`: a resumed run never meets a
    half-written checkpoint."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Make ``dst`` a copy of the finished file ``src`` atomically (a hard link when the file
    system allows, else a byte copy), replacing ``dst`` if it exists."""
    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.link.tmp")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(src, tmp)
        except OSError:  # no hard links here (some network or Windows drives)
            with open(src, "rb") as fin, open(tmp, "wb") as fout:
                while chunk := fin.read(1 << 20):
                    fout.write(chunk)
                fout.flush()
                os.fsync(fout.fileno())
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(dst.parent)
    return dst


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX only; a no-op elsewhere)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete temporary files that a killed :func:`atomic_save` left in ``folder``
    (``.<name>.*.tmp``); returns what was removed. Finished files are never touched."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.glob(".*.tmp") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale
