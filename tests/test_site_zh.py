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

from site_zh import (  # noqa: E402
    chinese_banner,
    chinese_sidebar,
    counterpart,
    is_chinese,
    with_english_outputs,
)

CJK = re.compile("[\u4e00-\u9fff]")


def test_counterpart_of_each_kind_of_page():
    found = {"README", "README.zh-CN", "notebooks/06_x", "notebooks/zh/06_x", "docs/data"}
    assert counterpart("notebooks/06_x", found) == ("notebooks/zh/06_x", "zh-CN", "简体中文")
    assert counterpart("notebooks/zh/06_x", found) == ("notebooks/06_x", "en", "English")
    assert counterpart("README", found) == ("README.zh-CN", "zh-CN", "简体中文")
    assert counterpart("README.zh-CN", found) == ("README", "en", "English")
    assert counterpart("docs/data", found) == ("README.zh-CN", "zh-CN", "简体中文")
    assert counterpart("notebooks/07_y", found) is None  # no Chinese page (yet): no link


def _conf_banners() -> list[str]:
    """Every banner docs/conf.py can put on the pages (html_theme_options["announcement"]),
    with a placeholder folder name where it names one."""
    import ast

    tree = ast.parse((ROOT / "docs" / "conf.py").read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript) \
                and getattr(node.targets[0].slice, "value", None) == "announcement":
            value = node.value
            if isinstance(value, ast.JoinedStr):
                found.append("".join(p.value if isinstance(p, ast.Constant) else "/data/x"
                                     for p in value.values))
            else:
                found.append(ast.literal_eval(value))
    return found


def test_every_banner_of_conf_py_has_a_chinese_one():
    banners = _conf_banners()
    assert len(banners) >= 2 and any("fast mode" in b for b in banners), banners
    for english in banners:
        chinese = chinese_banner(english)
        assert CJK.search(chinese) and not re.search(r"[A-Za-z]{3,} [A-Za-z]{3,}", chinese), (
            f"no Chinese for the banner {english!r}: add it to BANNERS in docs/site_zh.py")
    assert "/data/x" in chinese_banner("Outputs computed on the data in /data/x.")
    assert chinese_banner("Something new.") == "Something new."


def test_the_chinese_sidebar_lists_chinese_titles():
    assert is_chinese("notebooks/zh/06_x") and is_chinese("README.zh-CN")
    assert not is_chinese("notebooks/06_x") and not is_chinese("README")
    html = chinese_sidebar([("01_a.html", "01 · 两大法宝函数", False),
                            ("06_b.html", "06 · 卷积 <与> 池化", True)])
    assert "章节" in html and html.count("<li") == 2 and "01 · 两大法宝函数" in html
    assert re.search(r'<li class="toctree-l1 current active"><a class="reference internal '
                     r'current" href="06_b\.html">06 · 卷积 &lt;与&gt; 池化</a>', html)


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
    english.cells[1].outputs.append(nbformat.v4.new_output(
        "stream", name="stdout", text="[course_utils] ants/bees: downloaded to /d/x\nplain 42\n"))
    merged = with_english_outputs(dict(chinese), dict(english))
    assert merged["cells"][1]["outputs"][1]["text"] == \
        "[course_utils] 蚂蚁/蜜蜂：已下载到 /d/x\nplain 42\n"  # course_utils lines in Chinese
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
    nbformat.write(_nb("## 01 · OK", "print(6 * 7)  # the answer"),
                   project / "notebooks/01_ok.ipynb")
    nbformat.write(_nb("## 01 · 好", "print(6 * 7)  # 答案"), project / "notebooks/zh/01_ok.ipynb")
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
    # the Chinese page: Chinese navigation, home link, site title and fast-mode banner
    nav = re.search(r'<nav class="bd-links bd-docs-nav".*?</nav>', chinese, re.S).group()
    assert "01 · 好" in nav and "01 · OK" not in nav and "章节" in nav, nav
    assert re.search(r'href="\.\./\.\./README\.zh-CN\.html"', nav) and "小课程" in nav
    assert "小土堆 PyTorch 快速入门（中文版）" in chinese and "快速模式" in chinese
    assert "Built in fast mode" not in chinese and "Built in fast mode" in english
    english_nav = re.search(r'<nav class="bd-links bd-docs-nav".*?</nav>', english, re.S).group()
    assert "01 · OK" in english_nav and "01 · 好" not in english_nav
    zh_home = (site / "README.zh-CN.html").read_text(encoding="utf-8")
    assert re.search(r'<a href="README\.html"[^>]*>English</a>', zh_home)
