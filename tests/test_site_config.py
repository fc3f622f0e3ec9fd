"""docs/conf.py read as Sphinx reads it: inside docs/, with the variables a build is given."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sphinx.config import eval_config_file

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("named", ["data", "./data"])
def test_a_relative_data_dir_is_read_from_the_repository_root(monkeypatch, named):
    """The README's command runs from the root with e.g. COURSE_DATA_DIR=../shared/data;
    Sphinx evaluates conf.py inside docs/ and the notebooks run in notebooks/, so the folder
    must be made absolute from the root, once, for conf.py and for every notebook kernel."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COURSE_DATA_DIR", named)
    monkeypatch.delenv("COURSE_FAST", raising=False)
    namespace = eval_config_file(ROOT / "docs" / "conf.py", tags=None)
    assert Path.cwd() == ROOT  # Sphinx changed into docs/ only while reading the file
    assert namespace["DATA"] == (ROOT / "data").resolve()
    assert Path(os.environ["COURSE_DATA_DIR"]).resolve() == (ROOT / "data").resolve()
    assert namespace["MODE"].endswith("-data")


def test_a_missing_data_dir_stops_the_build_naming_it(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COURSE_DATA_DIR", "no-such-folder")
    with pytest.raises(Exception, match="no-such-folder"):
        eval_config_file(ROOT / "docs" / "conf.py", tags=None)
