"""The environment for a real ``python -m course_utils`` (or torchrun) process in a test."""

from __future__ import annotations

import os
from pathlib import Path

from course_utils.settings import REPO_ROOT


def course_env(cache: Path, **extra: str) -> dict:
    """``os.environ`` without fast mode, offline, with a private cache and one thread.

    A subprocess is not covered by conftest's socket block, so it gets the course's own
    offline switch; one thread because on a busy machine several multi-threaded processes
    slow each other down badly (and in-process comparison runs use one thread too).
    """
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "COURSE_FAST")}
    env.update(COURSE_OFFLINE="1", COURSE_CACHE_DIR=str(cache), PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                         env.get("PYTHONPATH")])), **extra)
    return env
