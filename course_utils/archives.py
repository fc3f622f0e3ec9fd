"""An archive's folder, unpacked safely and checked later.

:func:`unpack_folder` makes an archive's folder appear only complete and checked
(:func:`tree_sha256`), never half unpacked, with a list of its files and their sizes
(:data:`MANIFEST`) so that :func:`check_unpacked` can tell later that a file went missing or
was cut short. Only what the course downloaded itself is ever deleted: a damaged download is
deleted and reported as :class:`ChecksumError`, while an archive or folder of the learner's
own is left untouched and reported as :class:`DamagedInputError`. Archives are untrusted: a
member that climbs out, a link, a device or an oversized member is refused
(:class:`UnsafeArchiveError`). Downloading is :mod:`course_utils.download`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from course_utils import files
from course_utils.i18n import N_, tr


class ChecksumError(RuntimeError):
    """A file the course downloaded does not match its published checksum (it was deleted)."""


class DamagedInputError(ValueError):
    """A file or folder the learner supplied (``--data-dir``, ``COURSE_DATA_DIR``,
    ``data_dir=``) cannot be used. It is left exactly as it was; the message names it, what
    is wrong and what to do."""


class UnsafeArchiveError(ValueError):
    """An archive holds a member that must not be unpacked (a path out of the folder, a link,
    a device, an oversized file); nothing is unpacked and the archive stays where it was."""


#: How to get past a full disk in the course cache.
CACHE_FIX = N_("set COURSE_CACHE_DIR to a folder on another disk")


#: The file :func:`unpack_folder` writes into every folder it unpacks: ``{relative path: size}``.
MANIFEST = ".course-manifest.json"


def tree_sha256(folder: str | os.PathLike) -> str:
    """One sha256 over every file below ``folder`` (relative path + content); the
    :data:`MANIFEST` that :func:`unpack_folder` adds is not counted."""
    folder = Path(folder)
    h = hashlib.sha256()
    for p in sorted(q for q in folder.rglob("*") if q.is_file() and q.name != MANIFEST):
        h.update(p.relative_to(folder).as_posix().encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def _sizes(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_size
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}


def check_unpacked(folder: str | os.PathLike) -> str | None:
    """None when ``folder`` (made by :func:`unpack_folder`) still holds every file it was
    unpacked with, at its size; else what is wrong, in words. A folder without a
    :data:`MANIFEST` (not made by the course) is not checked: None."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None
    try:
        want = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return N_(f"its file list {MANIFEST} is unreadable ({exc})")
    have = _sizes(folder)
    missing = [name for name in want if name not in have]
    if missing:
        return N_(f"{len(missing)} file(s) missing, e.g. {missing[0]}")
    short = [name for name, size in want.items() if have[name] != size]
    if short:
        return N_(f"{len(short)} file(s) cut short or changed, e.g. {short[0]}")
    return None


def discard(folder: Path) -> None:
    """Remove a damaged cache folder: first renamed out of the way (atomic), then deleted, so
    no other process ever sees it half deleted."""
    aside = folder.with_name(f".{folder.name}.{os.getpid()}.discarded")
    try:
        os.replace(folder, aside)
    except OSError:  # gone already (another process) or not a folder
        return
    shutil.rmtree(aside, ignore_errors=True)


def unpack_folder(archive: Path, name: str, parent: Path, tree: str | None = None, *,
                  downloaded: bool = False) -> Path:
    """Unpack the folder ``name`` of a .zip/.tar.gz ``archive`` to ``parent/name``.

    It is unpacked into a temporary folder first and moved into place only when complete and,
    if ``tree`` is given, when its :func:`tree_sha256` equals ``tree`` — so an interrupted or
    corrupt unpack never leaves a ``parent/name`` that a later call would trust. When another
    process put a complete copy in place meanwhile, that copy is kept and returned.

    An archive that cannot be read (cut short, not an archive) or does not match ``tree`` is
    deleted only when the course ``downloaded`` it (:class:`ChecksumError`: a new call
    downloads it again); the learner's own archive is never touched
    (:class:`DamagedInputError`). A member that climbs out of the folder, a link, a device or
    an oversized member raises :class:`UnsafeArchiveError` before anything is kept; a full
    disk raises :class:`course_utils.files.WriteError`.
    """
    archive, parent = Path(archive), Path(parent)
    with files.writing(parent, CACHE_FIX):
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=parent) as tmp:
            unpacked = _unpack_checked(archive, name, Path(tmp), tree, downloaded)
            return _move_into_place(unpacked, parent / name)


def _unpack_checked(archive: Path, name: str, tmp: Path, tree: str | None,
                    downloaded: bool) -> Path:
    """``tmp/name`` unpacked from ``archive``, checked, with its :data:`MANIFEST`."""
    try:
        _extract(archive, tmp)
    except tarfile.FilterError as exc:  # what tarfile's own "data" filter refuses
        raise _unsafe(archive, exc.tarinfo.name, str(exc)) from None
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError, UnsafeArchiveError)) \
                or files.write_failure(exc, tmp) is not None:
            raise
        _reject(archive, N_(f"is damaged or cut short ({exc})"), downloaded)
    unpacked = tmp / name
    if tree is not None and (not unpacked.is_dir() or tree_sha256(unpacked) != tree):
        _reject(archive, N_(f"does not hold the expected {name}/ (tree sha256 {tree})"),
                downloaded)
    if not unpacked.is_dir():
        raise ValueError(tr(f"{archive} holds no folder {name}/ at its top; it was left as "
                            f"it is. Pack the folder itself (its name first in every path)."))
    (unpacked / MANIFEST).write_text(json.dumps(_sizes(unpacked)), encoding="utf-8")
    return unpacked


def _reject(archive: Path, what: str, downloaded: bool) -> None:
    """Raise for an archive that cannot be used; only the course's own download is deleted."""
    if downloaded:
        archive.unlink(missing_ok=True)
        raise ChecksumError(tr(f"{archive} {what}; the download was deleted and nothing was "
                               "kept. Run again to download it anew.")) from None
    raise DamagedInputError(tr(f"{archive} {what}; it was left as it is. Copy it again (the "
                               "whole file) and run again.")) from None


def _move_into_place(unpacked: Path, target: Path) -> Path:
    if target.exists() and check_unpacked(target) is not None:
        discard(target)  # damaged: replaced by this complete copy
    try:
        os.replace(unpacked, target)
    except OSError:
        if not target.is_dir() or check_unpacked(target) is not None:
            raise
        # another process put a complete copy in place first: keep that one
    return target


# ---------------------------------------------------------------------- untrusted archives
#: The largest member an archive may hold (CIFAR-10's biggest file is 31 MB).
MAX_MEMBER_BYTES = 256 << 20


def _extract(archive: Path, dest: Path) -> None:
    """Unpack ``archive`` into ``dest``, refusing every unsafe member (:func:`_refusal`)."""
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _check_member(archive, info.filename, _zip_kind(info), info.file_size)
            zf.extractall(dest)
    else:
        def check(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
            _check_member(archive, member.name, _tar_kind(member), member.size)
            return tarfile.data_filter(member, path)

        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter=check)


def _check_member(archive: Path, name: str, kind: str, size: int) -> None:
    if (why := _refusal(name, kind, size)) is not None:
        raise _unsafe(archive, name, why)


def _refusal(name: str, kind: str, size: int) -> str | None:
    """Why an archive member must not be unpacked, in words; None when it is safe."""
    path = PurePosixPath(name.replace("\\", "/"))
    if kind not in ("file", "folder"):
        return N_(f"it is a {kind}")
    if path.is_absolute() or PureWindowsPath(name).drive:
        return N_("its path is absolute")
    if ".." in path.parts:
        return N_("its path climbs out of the folder (..)")
    if size > MAX_MEMBER_BYTES:
        return N_(f"it is {size:,} bytes, more than the {MAX_MEMBER_BYTES:,} allowed")
    return None


def _unsafe(archive: Path, member: str, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(tr(f"{archive}: refused to unpack its member {member!r} ({why}); "
                                 "nothing was unpacked and the archive was left where it is. "
                                 "Use a copy from the course's own source."))


def _tar_kind(member: tarfile.TarInfo) -> str:
    if member.isfile():
        return "file"
    if member.isdir():
        return "folder"
    return N_("link") if member.issym() or member.islnk() else N_("device or pipe")


def _zip_kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return N_("link")
    if info.is_dir():
        return "folder"
    return "file" if stat.S_IFMT(mode) in (0, stat.S_IFREG) else N_("device or pipe")
