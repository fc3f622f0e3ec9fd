"""What the course's data sources share: the one line each prints to say which source it used
(through :func:`course_utils.i18n.tr`, in the course language), the learner's data folder
(``data_dir=`` or ``COURSE_DATA_DIR``) and whose folder a ``root=`` is (the course's cache or
the learner's). The sources: CIFAR-10 in :mod:`course_utils.data`, ants and bees in
:mod:`course_utils.ants_bees`."""

from __future__ import annotations

import os
from pathlib import Path

from course_utils import settings
from course_utils.i18n import tr


def _say(verbose: bool, message: str) -> None:
    if verbose:
        print(f"[course_utils] {tr(message)}")


def _data_folder(data_dir: str | os.PathLike | None) -> Path | None:
    """``data_dir`` checked to be a folder, or ``COURSE_DATA_DIR`` when it is None."""
    if data_dir is None:
        return settings.data_dir()
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(tr(f"data folder {str(path)!r} does not exist; pass a folder "
                                   "holding cifar10-jpg/ or hymenoptera_data/."))
    return path.resolve()


def _root_folder(root: str | os.PathLike | None) -> tuple[Path, bool]:
    """``root`` as a folder (None: the course cache) and whether it is the learner's own.

    The course cache (:func:`course_utils.settings.cache_dir`) is the course's: a damaged
    copy there is its own download and may be removed and made again. Any other folder named
    by ``root=`` — and the cache itself when ``COURSE_DATA_DIR`` names it too — is the
    learner's: read, and added to when empty, but never deleted, moved or rewritten (what is
    damaged there is reported as :class:`course_utils.archives.DamagedInputError`)."""
    cache = settings.cache_dir()
    path = Path(root).expanduser() if root is not None else cache
    resolved = path.resolve()
    return path, resolved != cache.resolve() or resolved == settings.named_data_dir()
