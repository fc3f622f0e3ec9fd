"""Course-wide settings read from the environment.

Environment variables
---------------------
``CI`` / ``COURSE_FAST``
    Fast mode: notebooks and the CLI shrink epochs and data but run the same code.
``COURSE_OFFLINE=1``
    Never touch the network (downloads are skipped with a clear message).
``COURSE_DATA_DIR``
    A folder holding full data sets as files: ``cifar10-jpg/`` (or ``cifar10-jpg.tar.gz``)
    and ``hymenoptera_data/`` (``data_dir=`` / the CLI's ``--data-dir`` take precedence).

The package only reads these variables; it never sets one.
``COURSE_CACHE_DIR``
    Where downloads and unpacked archives go (default: ``.cache/`` in the course folder,
    or ``~/.cache/pytorch-course`` when the package is installed elsewhere).
"""

from __future__ import annotations

import os
from pathlib import Path

from course_utils.i18n import tr

_FALSE = {"", "0", "false", "no", "off"}

#: The course folder (the repository root) when the package runs from a checkout.
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Small real samples shipped with the course.
BUNDLED_DATA = REPO_ROOT / "data"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in _FALSE


def fast_mode() -> bool:
    """True when ``CI`` or ``COURSE_FAST`` is set (to anything but 0/false/no/off).

    >>> fast_mode()        # in a shell started with  COURSE_FAST=1 jupyter lab
    True
    """
    return _flag("CI") or _flag("COURSE_FAST")


def scaled(full, fast):
    """Pick ``fast`` in fast mode, else ``full`` — e.g. ``epochs = scaled(10, 1)``."""
    return fast if fast_mode() else full


def describe_run() -> str:
    """The line every notebook's setup cell prints, ``fast mode (CI): True`` or ``False``
    (chapter 01 explains fast mode; each notebook's run-size cell sizes its runs)."""
    return f"fast mode (CI): {fast_mode()}"


def offline() -> bool:
    """True when ``COURSE_OFFLINE`` forbids any network access."""
    return _flag("COURSE_OFFLINE")


def cache_dir() -> Path:
    """Folder for downloads and unpacked archives (created on first use)."""
    env = os.environ.get("COURSE_CACHE_DIR")
    if env:
        path = Path(env).expanduser()
    elif (REPO_ROOT / "pyproject.toml").exists():
        path = REPO_ROOT / ".cache"
    else:
        path = Path.home() / ".cache" / "pytorch-course"
    path.mkdir(parents=True, exist_ok=True)
    return path


def named_data_dir() -> Path | None:
    """The absolute path ``COURSE_DATA_DIR`` names (None when unset), not checked to exist:
    whose folder a path is can be asked before anything is read from it."""
    env = os.environ.get("COURSE_DATA_DIR", "").strip()
    return Path(env).expanduser().resolve() if env else None


def data_dir() -> Path | None:
    """The folder named by ``COURSE_DATA_DIR``, or None when unset.

    Raises ``FileNotFoundError`` when the variable names a folder that does not exist,
    so a typo is reported instead of silently falling back to the small sample.
    """
    path = named_data_dir()
    if path is not None and not path.is_dir():
        env = os.environ["COURSE_DATA_DIR"].strip()
        raise FileNotFoundError(tr(
            f"COURSE_DATA_DIR={env!r} is not a folder. Fix the path, or unset the variable "
            "to use the bundled samples."
        ))
    return path
