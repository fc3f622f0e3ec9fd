"""Run sizes live in one place (issue 22).

Every notebook that trains or loops over data has one "How big is this run" cell, the only
cell that asks the test harness anything (fast mode, which data will come, shrunk subsets).
It sets plain UPPER_CASE variables; every other lesson cell uses those and calls no harness
function, so it runs unchanged when copied into a script after the run-size cell.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from course_utils import settings

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
HEADING = re.compile(r"^#+ How big is this run", re.M)
#: what sizes a run for the test harness; a lesson cell must not call or import any of them
HARNESS = {"fast_mode", "scaled", "spread_subset", "choose_cifar10",
           "offline", "full_cifar10_available", "describe_run"}
#: a notebook whose code matches this trains or loops over data: it needs a run-size cell
LOOPS = re.compile(r"\.backward\(\)|\bDataLoader\(|\bTensorLoader\(|course_utils\.cli|cli\.main\(")
#: the run-size cell may also name where the data come from (chapters 5, 6: the course's call)
ALLOWED_LOWER = {"root"}


def _python(source: str) -> ast.Module:
    """The cell as Python: IPython magics and shell lines become ``pass``."""
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("%%"):
            if stripped.startswith("%%writefile"):
                continue  # the rest of the cell is the file's Python: check it too
            return ast.parse("")
        if stripped.startswith(("!", "%")):
            line = line[: len(line) - len(stripped)] + "pass"
        lines.append(line)
    return ast.parse("\n".join(lines))


def harness_uses(source: str) -> list[str]:
    """Every harness name the cell's code calls, imports or reads (comments and strings
    do not count)."""
    found = []
    for node in ast.walk(_python(source)):
        if isinstance(node, ast.Name) and node.id in HARNESS:
            found.append(node.id)
        elif isinstance(node, ast.Attribute) and node.attr in HARNESS:
            found.append(node.attr)
        elif isinstance(node, ast.ImportFrom):
            found += [a.name for a in node.names if a.name in HARNESS]
    return found


def run_size_cells(nb) -> list[int]:
    """Indices of code cells right below a markdown cell headed "How big is this run"."""
    cells = nb.cells
    return [i for i in range(1, len(cells))
            if cells[i].cell_type == "code" and cells[i - 1].cell_type == "markdown"
            and HEADING.search(cells[i - 1].source)]


def _assigned(source: str) -> set[str]:
    names = set()
    for node in ast.walk(_python(source)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


# --------------------------------------------------------------------- the checker itself
def test_the_checker_sees_calls_imports_and_attributes_but_not_words():
    assert harness_uses("EPOCHS = scaled(10, 2)") == ["scaled"]
    assert harness_uses("if settings.fast_mode():\n    pass") == ["fast_mode"]
    assert harness_uses("from course_utils.data import cifar10, spread_subset") == ["spread_subset"]
    assert harness_uses("%%writefile x.py\nds = data.spread_subset(ds, 5)") == ["spread_subset"]
    assert harness_uses("!ls\nx = choose_cifar10()") == ["choose_cifar10"]
    assert harness_uses('print("scaled by 2")  # fast_mode() in a comment') == []
    assert harness_uses("train = cifar10(train=True, download=DOWNLOAD)") == []


def test_the_checker_finds_the_run_size_cell():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# title"), nbformat.v4.new_code_cell("import os"),
        nbformat.v4.new_markdown_cell("### How big is this run\n\ntext"),
        nbformat.v4.new_code_cell("EPOCHS = 1"), nbformat.v4.new_code_cell("x = 1")])
    assert run_size_cells(nb) == [3]


# ------------------------------------------------------------------------- the notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_lesson_cell_calls_the_harness(path):
    nb = nbformat.read(path, as_version=4)
    sizes = run_size_cells(nb)
    assert len(sizes) <= 1, f"{path.name}: {len(sizes)} run-size cells, one is the rule"
    offenders = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or i == 1 or i in sizes:  # 1: the setup cell
            continue
        used = harness_uses(cell.source)
        if used:
            first = cell.source.strip().splitlines()[0]
            offenders.append(f"cell {i} ({first[:50]}…): {sorted(set(used))}")
    assert not offenders, (f"{path.name}: lesson cells call the test harness — move the sizes "
                           "into the run-size cell:\n" + "\n".join(offenders))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_notebook_that_trains_or_loops_has_one_run_size_cell_of_plain_variables(path):
    nb = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    sizes = run_size_cells(nb)
    if LOOPS.search(code):
        assert len(sizes) == 1, f"{path.name} trains or loops over data: needs a run-size cell"
    for i in sizes:
        names = _assigned(nb.cells[i].source)
        lower = {n for n in names if not n.isupper() and n not in ALLOWED_LOWER}
        assert not lower, f"{path.name}: the run-size cell sets {lower}: UPPER_CASE only"
        later = "\n".join(c.source for c in nb.cells[i + 1:] if c.cell_type == "code")
        unused = {n for n in names if n not in ALLOWED_LOWER and not re.search(rf"\b{n}\b", later)
                  and len(re.findall(rf"\b{n}\b", nb.cells[i].source)) < 2}
        assert not unused, f"{path.name}: the run-size cell sets {unused}, which no cell uses"


def test_the_setup_cell_says_which_mode_without_sizing_anything():
    for path in NOTEBOOKS:
        setup = nbformat.read(path, as_version=4).cells[1].source
        assert set(harness_uses(setup)) <= {"describe_run"}, path.name


def test_chapter_1_explains_fast_mode_and_how_to_switch_it():
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    [i] = run_size_cells(nb)
    text = nb.cells[i - 1].source
    for word in ("CI", "COURSE_FAST", "fast mode", "jupyter lab"):
        assert word in text, word


# ----------------------------------------------------------------- the settings it reads
def test_describe_run_names_the_mode(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("COURSE_FAST", raising=False)
    assert settings.describe_run().startswith("fast mode (CI): False")
    monkeypatch.setenv("COURSE_FAST", "1")
    assert settings.describe_run().startswith("fast mode (CI): True")


def test_full_cifar10_available_follows_the_data_that_cifar10_would_find(monkeypatch, tmp_path):
    from course_utils import cifar_batches, download

    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    assert cifar_batches.full_cifar10_available() is False  # offline, nothing cached: the sample
    monkeypatch.delenv("COURSE_OFFLINE")
    monkeypatch.setattr(download, "host_reachable", lambda url, timeout=3.0: "cifar" in url)
    assert cifar_batches.full_cifar10_available() is True  # online: it would download
    monkeypatch.setattr(download, "host_reachable", lambda url, timeout=3.0: False)
    assert cifar_batches.full_cifar10_available() is False  # no network
    (tmp_path / "data" / "cifar10-jpg" / "train").mkdir(parents=True)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    assert cifar_batches.full_cifar10_available() is True  # an image folder of the full set
    monkeypatch.delenv("COURSE_DATA_DIR")
    folder = tmp_path / "cache" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                 "data_batch_5", "test_batch", "batches.meta"):
        (folder / name).write_bytes(b"x")
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    assert cifar_batches.full_cifar10_available() is True  # the official files in the cache
