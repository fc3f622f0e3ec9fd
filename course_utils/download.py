"""Bounded, checksummed downloads that fail fast and clearly when offline.

Every download here:

* is skipped at once when ``COURSE_OFFLINE=1``;
* first checks that the host answers within ``probe_timeout`` seconds, so a machine with
  no network gets a one-line message in seconds instead of a hang;
* reads with a socket timeout, writes to a ``.part`` file of its own and renames only after
  the checksum matches, so an interrupted download never leaves a half file behind, and two
  processes downloading the same file at once end with one good copy;
* reuses a finished file only when its checksum matches; a damaged one is reported in one line
  and downloaded again.

:func:`unpack_folder` does the same for an archive's folder: it appears only complete and
checked (:func:`tree_sha256`), never half unpacked, with a list of its files and their sizes
(:data:`MANIFEST`) so that :func:`check_unpacked` can tell later that a file went missing or
was cut short. A damaged archive is deleted and reported as :class:`ChecksumError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tarfile
import tempfile
import threading
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from course_utils import settings


class OfflineError(RuntimeError):
    """The network is off or unreachable; the message says what to do instead."""


class ChecksumError(RuntimeError):
    """A downloaded file does not match its published checksum."""


_probe_cache: dict[str, bool] = {}


def host_reachable(url: str, timeout: float = 3.0) -> bool:
    """True if the host in ``url`` accepts a TCP connection within ``timeout`` seconds.

    Name lookup is bounded too (a slow resolver cannot stall a notebook). The answer is
    cached per host for the life of the process. Always False when ``COURSE_OFFLINE=1``.
    """
    if settings.offline():
        return False
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if host not in _probe_cache:
        _probe_cache[host] = _connects(host, port, timeout)
    return _probe_cache[host]


def _connects(host: str, port: int, timeout: float) -> bool:
    found: list = []
    lookup = threading.Thread(target=lambda: found.append(_lookup(host, port)), daemon=True)
    lookup.start()
    lookup.join(timeout)
    if not found or found[0] is None:
        return False
    try:
        with socket.create_connection(found[0], timeout=timeout):
            return True
    except OSError:
        return False


def _lookup(host: str, port: int):
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        return address[:2]
    except OSError:
        return None


def file_digest(path: str | os.PathLike, algorithm: str = "md5") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    md5: str | None = None,
    timeout: float = 15.0,
    probe_timeout: float = 3.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` (a file path) and verify its md5.

    Returns ``dest``. An existing file with the right checksum is reused.

    Raises:
        OfflineError: ``COURSE_OFFLINE=1`` is set or the host does not answer.
        ChecksumError: the bytes received do not match ``md5`` (the file is deleted).
    """
    dest = Path(dest)
    if dest.exists():
        if md5 is None or file_digest(dest) == md5:
            return dest
        print(f"[course_utils] {dest} is damaged or incomplete (md5 differs); downloading it "
              "again.")
    if settings.offline():
        raise OfflineError(f"COURSE_OFFLINE=1 is set, so {url} was not downloaded.")
    if not host_reachable(url, probe_timeout):
        raise OfflineError(
            f"cannot reach {urllib.parse.urlsplit(url).hostname} within {probe_timeout:.0f} s "
            "(no network?)"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, part = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    part = Path(part)  # this process's own: a second download of the same file writes another
    request = urllib.request.Request(url, headers={"User-Agent": "course_utils"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            bar = _progress_bar(total, dest.name) if progress else None
            for chunk in iter(lambda: response.read(1 << 16), b""):
                out.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
    except OSError as exc:  # URLError, timeouts and resets are all OSError
        part.unlink(missing_ok=True)
        raise OfflineError(f"download of {url} failed: {exc}") from exc
    except BaseException:  # Ctrl+C: no half file left behind
        part.unlink(missing_ok=True)
        raise
    if md5 is not None and (got := file_digest(part)) != md5:
        part.unlink(missing_ok=True)
        raise ChecksumError(f"{url}: md5 {got} does not match the expected {md5}; try again.")
    os.replace(part, dest)
    return dest


def _progress_bar(total: int, name: str):
    return tqdm(total=total or None, unit="B", unit_scale=True, desc=f"download {name}")


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
        return f"its file list {MANIFEST} is unreadable ({exc})"
    have = _sizes(folder)
    missing = [name for name in want if name not in have]
    if missing:
        return f"{len(missing)} file(s) missing, e.g. {missing[0]}"
    short = [name for name, size in want.items() if have[name] != size]
    if short:
        return f"{len(short)} file(s) cut short or changed, e.g. {short[0]}"
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


def unpack_folder(archive: Path, name: str, parent: Path, tree: str | None = None) -> Path:
    """Unpack the folder ``name`` of a .zip/.tar.gz ``archive`` to ``parent/name``.

    It is unpacked into a temporary folder first and moved into place only when complete and,
    if ``tree`` is given, when its :func:`tree_sha256` equals ``tree`` — so an interrupted or
    corrupt unpack never leaves a ``parent/name`` that a later call would trust. On a checksum
    mismatch or an archive that cannot be read (cut short, not an archive) the archive is
    deleted too (a new call downloads it again) and ``ChecksumError`` is raised. When another
    process put a complete copy in place meanwhile, that copy is kept and returned.
    """
    archive, parent = Path(archive), Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=parent) as tmp:
        try:
            if archive.suffix == ".zip":
                with zipfile.ZipFile(archive) as zf:
                    zf.extractall(tmp)
            else:
                with tarfile.open(archive) as tar:
                    tar.extractall(tmp, filter="data")
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as exc:
            if isinstance(exc, (FileNotFoundError, PermissionError)):
                raise
            archive.unlink(missing_ok=True)
            raise ChecksumError(
                f"{archive} is damaged or cut short ({exc}); it was deleted. Run again to "
                "download it anew.") from None
        unpacked = Path(tmp) / name
        if tree is not None and (not unpacked.is_dir() or tree_sha256(unpacked) != tree):
            archive.unlink(missing_ok=True)
            raise ChecksumError(
                f"{archive.name} does not hold the expected {name}/ (tree sha256 {tree}); the "
                "download was deleted and nothing was kept. Run again to download it anew."
            )
        if not unpacked.is_dir():
            raise ValueError(f"{archive} holds no folder {name}/ at its top.")
        (unpacked / MANIFEST).write_text(json.dumps(_sizes(unpacked)), encoding="utf-8")
        target = parent / name
        if target.exists() and check_unpacked(target) is not None:
            discard(target)  # damaged: replaced by this complete copy
        try:
            os.replace(unpacked, target)
        except OSError:
            if not target.is_dir() or check_unpacked(target) is not None:
                raise
            # another process put a complete copy in place first: keep that one
    return target
