"""Bounded, checksummed downloads that fail fast and clearly when offline.

Every download here:

* is skipped at once when ``COURSE_OFFLINE=1``;
* first checks that the host answers within ``probe_timeout`` seconds, so a machine with
  no network gets a one-line message in seconds instead of a hang;
* reads with a socket timeout, writes to a ``.part`` file and renames only after the
  checksum matches, so an interrupted download never leaves a half file behind.

:func:`unpack_folder` does the same for an archive's folder: it appears only complete and
checked (:func:`tree_sha256`), never half unpacked.
"""

from __future__ import annotations

import hashlib
import os
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
    if dest.exists() and (md5 is None or file_digest(dest) == md5):
        return dest
    if settings.offline():
        raise OfflineError(f"COURSE_OFFLINE=1 is set, so {url} was not downloaded.")
    if not host_reachable(url, probe_timeout):
        raise OfflineError(
            f"cannot reach {urllib.parse.urlsplit(url).hostname} within {probe_timeout:.0f} s "
            "(no network?)"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
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
    if md5 is not None and (got := file_digest(part)) != md5:
        part.unlink(missing_ok=True)
        raise ChecksumError(f"{url}: md5 {got} does not match the expected {md5}; try again.")
    os.replace(part, dest)
    return dest


def _progress_bar(total: int, name: str):
    return tqdm(total=total or None, unit="B", unit_scale=True, desc=f"download {name}")


def tree_sha256(folder: str | os.PathLike) -> str:
    """One sha256 over every file below ``folder`` (relative path + content)."""
    folder = Path(folder)
    h = hashlib.sha256()
    for p in sorted(q for q in folder.rglob("*") if q.is_file()):
        h.update(p.relative_to(folder).as_posix().encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def unpack_folder(archive: Path, name: str, parent: Path, tree: str | None = None) -> Path:
    """Unpack the folder ``name`` of a .zip/.tar.gz ``archive`` to ``parent/name``.

    It is unpacked into a temporary folder first and moved into place only when complete and,
    if ``tree`` is given, when its :func:`tree_sha256` equals ``tree`` — so an interrupted or
    corrupt unpack never leaves a ``parent/name`` that a later call would trust. On a checksum
    mismatch the archive is deleted too (a new call downloads it again) and ``ChecksumError``
    is raised.
    """
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=parent) as tmp:
        if archive.suffix == ".zip":
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        else:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        unpacked = Path(tmp) / name
        if tree is not None and (not unpacked.is_dir() or tree_sha256(unpacked) != tree):
            archive.unlink(missing_ok=True)
            raise ChecksumError(
                f"{archive.name} does not hold the expected {name}/ (tree sha256 {tree}); the "
                "download was deleted and nothing was kept. Run again to download it anew."
            )
        if not unpacked.is_dir():
            raise ValueError(f"{archive} holds no folder {name}/ at its top.")
        if (parent / name).exists():
            raise FileExistsError(f"{parent / name} is in the way but is not a complete copy; "
                                  "delete it and run again.")
        os.replace(unpacked, parent / name)
    return parent / name
