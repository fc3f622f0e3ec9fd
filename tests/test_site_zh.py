"""The Chinese edition on the course website (docs/site_zh.py): every page links to the other
language, and a Chinese page shows the outputs of its English notebook without running it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs"))

from site_zh import counterpart, with_english_outputs  # noqa: E402


def test_counterpart_of_each_kind_of_page():
    found = {"README", "README.zh-CN", "notebooks/06_x", "notebooks/zh/06_x", "docs/data"}
    assert counterpart("notebooks/06_x", found) == ("notebooks/zh/06_x", "zh-CN", "简体中文")
    assert counterpart("notebooks/zh/06_x", found) == ("notebooks/06_x", "en", "English")
    assert counterpart("README", found) == ("README.zh-CN", "zh-CN", "简体中文")
    assert counterpart("README.zh-CN", found) == ("README", "en", "English")
    assert counterpart("docs/data", found) == ("README.zh-CN", "zh-CN", "简体中文")
    assert counterpart("notebooks/07_y", found) is None  # no Chinese page (yet): no link


def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(c[1:]) if c.startswith("#") else
                nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def test_outputs_are_copied_cell_by_cell():
    english = _nb("#Title", "print(6 * 7)  # the answer")
    english.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="42\n")]
    english.cells[1].execution_count = 1
    chinese = _nb("#标题", "print(6 * 7)  # 答案")
    merged = with_english_outputs(dict(chinese), dict(english))
    assert merged["cells"][1]["outputs"][0]["text"] == "42\n"
    assert merged["cells"][1]["source"] == "print(6 * 7)  # 答案"
    other = _nb("#标题", "#多了一个单元格", "print(6 * 7)")
    assert with_english_outputs(dict(other), dict(english))["cells"][2]["outputs"] == []


@pytest.mark.slow
def test_a_tiny_site_has_both_languages(tmp_path):
    project = tmp_path / "course"
    (project / "notebooks" / "zh").mkdir(parents=True)
    shutil.copytree(ROOT / "docs", project / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "data").mkdir()
    shutil.copy(ROOT / "data" / "README.md", project / "data")
    (project / "README.md").write_text("# Tiny course\n", encoding="utf-8")
    (project / "README.zh-CN.md").write_text("# 小课程\n", encoding="utf-8")
    nbformat.write(_nb("#01 · OK", "print(6 * 7)  # the answer"), project / "notebooks/01_ok.ipynb")
    nbformat.write(_nb("#01 · 好", "print(6 * 7)  # 答案"), project / "notebooks/zh/01_ok.ipynb")
    env = {**{k: v for k, v in os.environ.items() if k != "COURSE_DATA_DIR"},
           "COURSE_FAST": "1", "COURSE_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-c", "docs", ".",
                             str(project / "site")], cwd=project, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "zh/01_ok.ipynb: Executed" not in result.stdout + result.stderr  # not run twice

    site = project / "site"
    english = (site / "notebooks/01_ok.html").read_text(encoding="utf-8")
    chinese = (site / "notebooks/zh/01_ok.html").read_text(encoding="utf-8")
    assert re.search(r'<a href="zh/01_ok\.html" hreflang="zh-CN"[^>]*>简体中文</a>', english)
    assert re.search(r'<a href="\.\./01_ok\.html" hreflang="en"[^>]*>English</a>', chinese)
    assert "42" in re.sub(r"<[^>]*>", "", chinese) and "答案" in chinese  # English output
    home = (site / "README.html").read_text(encoding="utf-8")
    assert re.search(r'<a href="README\.zh-CN\.html"[^>]*>简体中文</a>', home)
    zh_home = (site / "README.zh-CN.html").read_text(encoding="utf-8")
    assert re.search(r'<a href="README\.html"[^>]*>English</a>', zh_home)
