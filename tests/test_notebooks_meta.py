"""Every notebook (chapters 01–12 and the appendices): stored without outputs, with the required
front matter, and linked from the README."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CJK = re.compile(r"[\u4e00-\u9fff]")


def _is_appendix(path) -> bool:
    return "_appendix_" in path.name


def test_readme_chapter_table_matches_the_notebooks():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = re.findall(r"\(notebooks/(\d\d_\w+\.ipynb)\)", readme)
    assert len(linked) == len(set(linked)), "a notebook is linked twice"
    chapters = [name for name in linked if "_appendix_" not in name]
    assert [name[:2] for name in chapters] == [f"{n:02d}" for n in range(1, 13)], chapters
    on_disk = {p.name for p in NOTEBOOKS}
    assert on_disk <= set(linked), f"notebooks missing from the README: {on_disk - set(linked)}"
    assert set(linked) <= on_disk, f"README links missing notebooks: {set(linked) - on_disk}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs: run nbstripout"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_front_matter(path):
    nb = nbformat.read(path, as_version=4)
    title = nb.cells[0]
    assert title.cell_type == "markdown"
    first_line = title.source.strip().splitlines()[0]
    assert first_line.startswith("# "), f"{path.name}: first cell must start with a title"
    if _is_appendix(path):  # appendices go beyond the episodes: no episode numbers needed
        assert "Appendix" in first_line, f"{path.name}: an appendix's title says so"
    else:
        assert re.search(r"P\d+", first_line), f"{path.name}: title needs the episode numbers"
    assert CJK.search(first_line), f"{path.name}: title needs the Chinese episode title"
    assert "learning goals" in title.source.lower(), f"{path.name}: no learning goals"
    setup = nb.cells[1]
    assert setup.cell_type == "code" and "google.colab" in setup.source
    assert "course_utils" in setup.source, f"{path.name}: setup cell must import course_utils"
    text = "\n".join(c.source for c in nb.cells)
    if not _is_appendix(path):  # appendices: exercises and pitfall notes are optional
        assert "Pitfall" in text, f"{path.name}: no pitfall note"
        assert re.search(r"chapter\(\d+\)", text), f"{path.name}: no exercises via course_utils"
    assert re.search(r"^#+ Summary", text, re.M), f"{path.name}: no summary"
    assert CJK.search(text.split("Summary")[-1]), f"{path.name}: summary needs 中文 terms"
