"""Teaching round three (issue 24): every chapter is tied to its episodes on bilibili, the
concepts the anchors teach are written out where they are first needed, and no lesson leaves
hidden state behind (a name defined twice, a thread setting that outlives its loop)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {int(p.name[:2]): p for p in sorted((ROOT / "notebooks").glob("[01]*.ipynb"))}
SERIES = "https://www.bilibili.com/video/BV1hE411t7RN?p="
CHAPTERS = [n for n, p in NOTEBOOKS.items() if "_appendix_" not in p.name]


def _cells(number):
    return nbformat.read(NOTEBOOKS[number], as_version=4).cells


def _episodes(title: str) -> list[int]:
    """The episode numbers a chapter's title names: (P5–P6) → [5, 6], (P4) → [4]."""
    first, last = re.search(r"\(P(\d+)(?:–P(\d+))?\)", title).groups()
    return list(range(int(first), int(last or first) + 1))


@pytest.mark.parametrize("number", CHAPTERS)
def test_first_cell_links_every_episode_of_the_chapter(number):
    first = _cells(number)[0].source
    episodes = _episodes(first.splitlines()[0])
    linked = [int(p) for p in re.findall(re.escape(SERIES) + r"(\d+)\)", first)]
    assert linked == episodes, f"chapter {number}: links {linked}, episodes {episodes}"


@pytest.mark.parametrize("readme, folder", [("README.md", "notebooks/"),
                                            ("README.zh-CN.md", "notebooks/zh/")])
def test_readme_chapter_table_links_the_episodes(readme, folder):
    text = (ROOT / readme).read_text(encoding="utf-8")
    for number in CHAPTERS:
        name = NOTEBOOKS[number].stem
        row = next(line for line in text.splitlines() if f"]({folder}{name}.ipynb)" in line)
        episodes = _episodes(_cells(number)[0].source.splitlines()[0])
        linked = [int(p) for p in re.findall(re.escape(SERIES) + r"(\d+)\)", row)]
        assert linked == episodes, f"{readme}, {name}: links {linked}, episodes {episodes}"


def _code_trees(number):
    for cell in _cells(number):
        if cell.cell_type != "code":
            continue
        lines = [re.sub(r"^(\s*)[!%].*", r"\1pass", line) for line in cell.source.splitlines()]
        yield cell.id, ast.parse("\n".join(lines))


def test_chapter_6_defines_each_loader_and_network_once():
    seen: dict[str, str] = {}
    for cell_id, tree in _code_trees(6):
        for node in tree.body:
            names = ([node.name] if isinstance(node, ast.ClassDef) else
                     [t.id for t in node.targets if isinstance(t, ast.Name)]
                     if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                     and getattr(node.value.func, "id", "") in ("DataLoader", "Subset") else [])
            for name in names:
                assert name not in seen, f"{name}: defined in cell {seen[name]} and in {cell_id}"
                seen[name] = cell_id
    assert "dataloader" not in seen and "Tudui" not in seen


def test_chapter_8_sets_the_thread_count_back_after_each_one_thread_loop():
    one_thread_since = None  # (position, cell id) of the code cell that set one thread
    for position, (cell_id, tree) in enumerate(_code_trees(8)):
        if one_thread_since is not None:
            assert position == one_thread_since[0] + 1, \
                f"one thread set in cell {one_thread_since[1]} is still on in cell {cell_id}"
        calls = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call)),
                       key=lambda n: (n.lineno, n.col_offset))  # in the order they run
        for call in calls:
            if ast.unparse(call.func) == "torch.set_num_threads":
                one_thread = ast.unparse(call.args[0]) == "1"
                one_thread_since = (position, cell_id) if one_thread else None
    assert one_thread_since is None, f"cell {one_thread_since[1]} leaves torch at one thread"


def test_chapter_8_shows_backward_on_two_parameters_before_the_cnn():
    code = [c.source for c in _cells(8) if c.cell_type == "code"]
    two = next(i for i, s in enumerate(code) if "requires_grad=True" in s and ".backward()" in s)
    cnn = next(i for i, s in enumerate(code) if "result_loss.backward()" in s)
    assert two < cnn and "w.grad" in code[two] and "b.grad" in code[two]


def test_chapter_9_trains_transfer_learning_against_training_from_scratch():
    code = "\n".join(c.source for c in _cells(9) if c.cell_type == "code")
    for piece in ("hymenoptera(", "SHIPPED_WEIGHTS", "load_state_dict(shipped[\"model_state\"])",
                  ".features.requires_grad_(False)", ".classifier = nn.Linear(",
                  "frozen.eval()", "FastCNN(num_classes=", "loss.backward()", "plt.subplots("):
        assert piece in code, piece


def test_chapter_10_plots_training_and_test_loss_on_one_axis_and_explains_colab():
    cells = _cells(10)
    plot = next(c.source for c in cells if c.cell_type == "code" and "overfit" in c.id)
    assert plot.count("plt.subplots(") == 1
    assert 'h["train_loss"]' in plot and 'h["test_loss"]' in plot
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    for words in ("augmentation", "weight decay", "early stopping", "nvidia-smi",
                  "Change runtime type"):
        assert words.lower() in text.lower(), words


@pytest.mark.parametrize("number", [6, 10])
def test_long_chapters_open_with_a_contents_list_whose_links_land(number):
    cells = _cells(number)
    contents = cells[0].source.split("## Contents", 1)[1]
    anchors = re.findall(r"\]\(#([\w-]+)\)", contents)
    text = "\n".join(c.source for c in cells)
    assert len(anchors) >= 5
    for anchor in anchors:
        assert f'<a id="{anchor}"></a>' in text, f"chapter {number}: #{anchor} leads nowhere"
    assert text.count("**What you now know") >= 5


@pytest.mark.parametrize("number", sorted(NOTEBOOKS))
def test_no_lesson_function_is_longer_than_a_screen(number):
    for cell_id, tree in _code_trees(number):
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                length = node.end_lineno - node.lineno + 1
                assert length <= 45, f"chapter {number}, {cell_id}: {node.name}, {length} lines"
