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

Checking and unpacking an archive's folder is :mod:`course_utils.archives`; its names
(:func:`unpack_folder`, :func:`tree_sha256`, :func:`check_unpacked`, :func:`discard`,
:data:`MANIFEST` and the errors) can be imported from here too.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import threading
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from course_utils import files, settings
from course_utils.archives import (  # noqa: F401  (re-exported: importable from here too)
    CACHE_FIX,
    MANIFEST,
    ChecksumError,
    DamagedInputError,
    UnsafeArchiveError,
    check_unpacked,
    discard,
    tree_sha256,
    unpack_folder,
)
from course_utils.i18n import tr


class OfflineError(RuntimeError):
    """The network is off or unreachable; the message says what to do instead."""




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
        course_utils.files.WriteError: the cache folder is full, read-only or over quota.
    """
    dest = Path(dest)
    if dest.exists():
        if md5 is None or file_digest(dest) == md5:
            return dest
        print("[course_utils] " + tr(f"{dest} is damaged or incomplete (md5 differs); "
                                     "downloading it again."))
    if settings.offline():
        raise OfflineError(tr(f"COURSE_OFFLINE=1 is set, so {url} was not downloaded."))
    if not host_reachable(url, probe_timeout):
        raise OfflineError(tr(
            f"cannot reach {urllib.parse.urlsplit(url).hostname} within {probe_timeout:.0f} s "
            "(no network?)"
        ))
    with files.writing(dest.parent, CACHE_FIX):  # a read-only or full cache: one line
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
        raise files.write_failure(exc, dest.parent, CACHE_FIX) or OfflineError(
            tr(f"download of {url} failed: {exc}")) from exc
    except BaseException:  # Ctrl+C: no half file left behind
        part.unlink(missing_ok=True)
        raise
    if md5 is not None and (got := file_digest(part)) != md5:
        part.unlink(missing_ok=True)
        raise ChecksumError(tr(f"{url}: md5 {got} does not match the expected {md5}; "
                               "try again."))
    os.replace(part, dest)
    return dest


def _progress_bar(total: int, name: str):
    return tqdm(total=total or None, unit="B", unit_scale=True, desc=f"download {name}")
