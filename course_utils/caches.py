"""Cache files the course keeps for itself are disposable: checked when read, rebuilt when
damaged, written so that a reader never sees half a file.

An array is cached as a ``.npy`` file followed by :data:`TRAILER` and the CRC-32 of its
bytes. :func:`read_array` trusts a file only when it parses, has the expected shape and
dtype and its checksum matches; otherwise it says in one line why and returns None, and the
caller rebuilds it. :func:`write_array` writes to a temporary file of its own process and
renames it over the cache, so two processes building the same cache at once end with one
complete copy (the last rename wins; both copies are the same).

>>> import tempfile, pathlib
>>> path = write_array(pathlib.Path(tempfile.mkdtemp()) / "x.npy", np.zeros((2, 3), np.uint8))
>>> read_array(path, (2, 3)).shape
(2, 3)
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from course_utils.download import CACHE_FIX
from course_utils.files import atomic_write
from course_utils.i18n import N_, tr

__all__ = ["TRAILER", "read_array", "write_array"]

#: Ends every cache file: a marker and the CRC-32 of the array's bytes, so a
#: damaged, cut-short or half-copied cache is noticed (and rebuilt) instead of trusted.
TRAILER = b"course_utils-crc32"


def read_array(cache: Path, shape: tuple, dtype=np.uint8) -> np.ndarray | None:
    """The array cached in ``cache`` by :func:`write_array` when it has ``shape`` and
    ``dtype`` and its checksum matches; else None, after one line saying why (a missing file
    is no news: None, silently)."""
    if not cache.is_file():
        return None
    try:
        with open(cache, "rb") as f:
            arr = np.lib.format.read_array(f, allow_pickle=False)
            trailer = f.read()
        if arr.shape != tuple(shape) or arr.dtype != np.dtype(dtype):
            why = N_(f"it holds {arr.dtype} {arr.shape}, not {np.dtype(dtype)} {tuple(shape)}")
        elif trailer != TRAILER + struct.pack("<I", zlib.crc32(arr)):
            why = N_("its checksum does not match")
        else:
            return arr
    except Exception as exc:  # noqa: BLE001 – cut short, not an array, …: rebuild it
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'unreadable'}"
    print("[course_utils] " + tr(f"the cache file {cache} is damaged ({why}); rebuilding it."))
    return None


def write_array(cache: Path, arr: np.ndarray) -> Path:
    """Write ``arr`` and its checksum trailer with :func:`course_utils.files.atomic_write`:
    two processes building the same cache end with one complete copy; a full disk raises
    :class:`course_utils.files.WriteError` naming the cache folder."""
    arr = np.ascontiguousarray(arr)

    def write(f):
        np.lib.format.write_array(f, arr, allow_pickle=False)
        f.write(TRAILER + struct.pack("<I", zlib.crc32(arr)))

    return atomic_write(cache, write, CACHE_FIX)
