"""The structure of every notebook (chapters 01–12 and the appendices), one parametrised test
per rule: stored without outputs, the front matter (title with the episodes, learning goals,
the shared setup cell), headings, every exercise's question in the markdown above its answer
cell, and the summary with its 中文 | English table; plus the README's chapter table.

What each chapter *teaches* is tested in the chapter files (test_chapters_1_5.py,
test_chapters_6_8.py, test_chapters_9_15.py); see TESTING.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from course_utils.exercises import chapter

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CJK = re.compile(r"[\u4e00-\u9fff]")
#: The episodes of the first chapters, exactly as their titles name them.
EPISODES = {1: "(P4)", 2: "(P5–P6)", 3: "(P7–P8)", 4: "(P10–P13)", 5: "(P14–P15)"}
SETUP = "\n".join([  # the setup cell every notebook starts with (notebook rules)
    "# Setup — runs locally as is; on Colab it clones the course and installs course_utils "
    "first.",
    "import os, sys",
    'if "google.colab" in sys.modules and not os.path.isdir("course"):',
    '    !git clone -q {os.environ["COURSE_REPO"]} course && pip install -q -e course',
    '    sys.path.insert(0, "course")',
    "from course_utils.settings import describe_run",
    "print(describe_run())",
])


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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_title_setup_cell_and_summary_table(path):
    nb = nbformat.read(path, as_version=4)
    number = int(path.name[:2])
    title = nb.cells[0].source.splitlines()[0]
    assert title.startswith(f"# {number:02d} · "), title
    assert re.search(r"\((beyond )?P\d+(–P\d+)?\)$", title), f"{path.name}: episodes {title!r}"
    if number in EPISODES:
        assert title.endswith(EPISODES[number]), title
    assert nb.cells[1].source == SETUP, f"{path.name}: not the shared setup cell"
    assert nb.metadata.kernelspec.name == "python3"
    text = "\n".join(c.source for c in nb.cells)
    assert "## Summary" in text and "| 中文 | English |" in text, f"{path.name}: summary table"
    headings = re.findall(r"^## .+", "\n".join(c.source for c in nb.cells[2:]
                                               if c.cell_type == "markdown"), re.M)
    assert len(headings) >= 3, f"{path.name}: sections need ## headings"
    if not _is_appendix(path):
        assert "> **Pitfall:**" in text, f"{path.name}: no pitfall note"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_question_is_in_the_markdown_above_its_answer_cell(path):
    """Readable on GitHub without running anything: each exercise is checked in one code
    cell, the markdown cell just above it asks its question, and the exercises come in
    order; none is asked through ``.question()``."""
    number = int(path.name[:2])
    cells = nbformat.read(path, as_version=4).cells
    text = "\n".join(c.source for c in cells)
    assert f"chapter({number})" in text, f"{path.name}: no exercises via course_utils"
    ex = chapter(number)
    checked = []
    for i, cell in enumerate(cells):
        for key in re.findall(r"ex\.(q\d+)\.check\(", cell.source if cell.cell_type == "code"
                              else ""):
            above = cells[i - 1]
            assert above.cell_type == "markdown", f"{path.name}: no markdown above ex.{key}"
            assert " ".join(getattr(ex, key).prompt.split()) in " ".join(above.source.split()), \
                f"{path.name}: the markdown above ex.{key}.check does not ask its question"
            checked.append(key)
    assert sorted(checked) == sorted(vars(ex)), f"{path.name}: exercises missing or doubled"
    assert checked == sorted(checked, key=lambda k: int(k[1:])), \
        f"{path.name}: exercises appear out of order: {checked}"
    assert ".question()" not in text
