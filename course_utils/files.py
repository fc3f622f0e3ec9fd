"""Atomic file writes: a reader sees the old file or the complete new one, never half a file.

A write that fails because the disk is full, read-only or over quota raises
:class:`WriteError`: one line naming the folder, the cause and the fix, and the old file is
kept (:func:`writing` turns such an ``OSError``, and ``torch.save``'s "unexpected pos"
``RuntimeError`` on a full disk, into it).

>>> import torch, tempfile
>>> path = atomic_save({"w": torch.ones(2)}, tempfile.mkdtemp() + "/last.pt")
>>> path.name
'last.pt'
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

import torch

from course_utils.i18n import N_, tr

#: The write failures the learner must fix (not a bug): errno → (the cause, the first fix).
WRITE_FAILURES = {errno.ENOSPC: ("no space left on", "free space or "),
                  errno.EROFS: ("read-only file system at", "")}
if hasattr(errno, "EDQUOT"):  # not on Windows
    WRITE_FAILURES[errno.EDQUOT] = ("disk quota exceeded on", "free space or ")
#: What torch.save's C++ writer says when the disk is full mid-file.
_TORCH_FULL_DISK = ("unexpected pos", "file write failed")
#: Where else to write, when the caller knows no better.
DEFAULT_FIX = N_("choose another folder")


class WriteError(OSError):
    """Writing into ``folder`` failed for a reason the learner must fix (no space, read-only
    file system, quota); ``str()`` is one line: the cause, the folder, the fix (``fix``: where
    else to write, after "free space or" where freeing space helps)."""

    def __init__(self, code: int, folder: str | os.PathLike, fix: str = DEFAULT_FIX):
        super().__init__(code, WRITE_FAILURES[code][0], str(folder))
        self.folder, self.fix = Path(folder), fix

    def __str__(self) -> str:
        folder, fix = self.folder, self.fix  # one whole sentence per cause, for tr()
        if self.errno == errno.ENOSPC:
            return tr(f"no space left on {folder} — free space or {fix}")
        if self.errno == errno.EROFS:
            return tr(f"read-only file system at {folder} — {fix}")
        if self.errno == getattr(errno, "EDQUOT", None):
            return tr(f"disk quota exceeded on {folder} — free space or {fix}")
        return f"{self.strerror} {folder} — {WRITE_FAILURES[self.errno][1]}{fix}"


def write_failure(exc: BaseException, folder: str | os.PathLike,
                  fix: str = DEFAULT_FIX) -> WriteError | None:
    """``exc`` as a :class:`WriteError` for ``folder`` when it is a full disk, a read-only file
    system or a quota; else None (a bug or another kind of error: not ours to word)."""
    if isinstance(exc, WriteError):
        return exc
    code = getattr(exc, "errno", None) if isinstance(exc, OSError) else None
    if isinstance(exc, RuntimeError) and any(s in str(exc) for s in _TORCH_FULL_DISK):
        code = errno.ENOSPC
    return WriteError(code, folder, fix) if code in WRITE_FAILURES else None


@contextlib.contextmanager
def writing(folder: str | os.PathLike, fix: str = DEFAULT_FIX):
    """Run the block; a full disk, read-only file system or quota in it raises
    :class:`WriteError` for ``folder`` instead (one line, no traceback needed)."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        failure = write_failure(exc, folder, fix)
        if failure is None or failure is exc:
            raise
        raise failure from None


def atomic_write(path: str | os.PathLike, write, fix: str = DEFAULT_FIX) -> Path:
    """Call ``write(f)`` on a binary file beside ``path``, fsync, then rename over ``path``.

    A reader sees either the old file or the complete new one, never a half-written file —
    even if the process is killed (SIGKILL, power loss) mid-write. The temporary file is this
    process's own, so two processes writing the same ``path`` end with one complete copy.
    A full disk (or read-only file system, quota) raises :class:`WriteError` naming the folder
    and ``fix``; the old file stays.
    """
    path = Path(path)
    with writing(path.parent, fix):
        return _atomic_write(path, write)


def _atomic_write(path: Path, write) -> Path:
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
    system allows, else a byte copy), replacing ``dst`` if it exists; a full disk raises
    :class:`WriteError` and the old ``dst`` stays."""
    src, dst = Path(src), Path(dst)
    with writing(dst.parent):
        return _atomic_copy(src, dst)


def _atomic_copy(src: Path, dst: Path) -> Path:
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
