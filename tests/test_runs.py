"""course_utils.runs: every run gets a new folder ``<date>-<time>[_name]``, nothing earlier is
reused, and a folder that cannot be made is reported in one line."""

from __future__ import annotations

import datetime
import errno
import re
from pathlib import Path

import pytest

from course_utils import files, runs


class _Frozen(datetime.datetime):
    """A clock that always says 1 December 2026, 12:00:00 (so names can be taken in advance)."""

    @classmethod
    def now(cls, tz=None):
        return cls(2026, 12, 1, 12, 0, 0)


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setattr(runs._dt, "datetime", _Frozen)
    return "20261201-120000"


def test_the_folder_is_named_by_date_and_time_and_the_runs_name(tmp_path):
    deep = tmp_path / "two" / "levels"  # made on the way
    named = runs.new_run_dir(deep, "p7")
    plain = runs.new_run_dir(deep)
    assert named.is_dir() and named.parent == deep and re.fullmatch(r"\d{8}-\d{6}_p7", named.name)
    assert plain.is_dir() and re.fullmatch(r"\d{8}-\d{6}(-\d+)?", plain.name), plain.name


def test_the_default_base_is_runs_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    made = runs.new_run_dir(name="x")
    assert made.parent == Path("runs") and (tmp_path / made).is_dir()


def test_a_taken_name_gets_the_next_number_and_a_thousand_taken_ones_an_error(tmp_path, frozen):
    (tmp_path / f"{frozen}_exp").mkdir()
    (tmp_path / f"{frozen}_exp-2").mkdir()
    assert runs.new_run_dir(tmp_path, "exp").name == f"{frozen}_exp-3"
    for i in range(4, 1000):
        (tmp_path / f"{frozen}_exp-{i}").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(FileExistsError) as info:
        runs.new_run_dir(tmp_path, "exp")
    text = str(info.value)
    assert str(tmp_path) in text and f"{frozen}_exp-999" in text and "Delete old runs" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no -1000 made


def test_a_full_disk_names_the_runs_folder(tmp_path, monkeypatch):
    def no_space(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "mkdir", no_space)
    with pytest.raises(files.WriteError) as info:
        runs.new_run_dir(tmp_path / "logs", "exp")
    text = str(info.value)
    assert "\n" not in text and str(tmp_path / "logs") in text and "no space left" in text.lower()
