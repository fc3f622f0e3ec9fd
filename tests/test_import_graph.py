"""The package's import graph (every import, at the top or inside a function): no cycle, and
the leaf modules import nothing of the course (#27)."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "course_utils"


def _graph() -> dict[str, set[str]]:
    names = {".".join(f.relative_to(PACKAGE.parent).with_suffix("").parts)
             .removesuffix(".__init__"): f for f in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in names.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = here.split(".")[:len(here.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in names:
                    target = target.rpartition(".")[0]
                if target and target not in (name, "course_utils"):
                    found.add(target)
        graph[name] = found
    return graph


def test_no_module_imports_its_way_back_to_itself():
    graph = _graph()
    assert {"course_utils.cli", "course_utils.training", "course_utils.engine"} <= set(graph)
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None
    assert order.index("course_utils.engine") < order.index("course_utils.training") < \
        order.index("course_utils.cli")  # the train command goes straight down


def test_the_leaf_modules_import_nothing_of_the_course():
    """…but the course language: settings' error about COURSE_DATA_DIR goes through ``tr``,
    and nothing i18n imports comes back round to settings."""
    graph = _graph()
    for leaf in ("course_utils.interrupts", "course_utils.errors"):
        assert graph[leaf] == set(), (leaf, graph[leaf])
    assert graph["course_utils.settings"] <= {"course_utils.i18n"}, graph["course_utils.settings"]
    reached, todo = set(), ["course_utils.i18n"]
    while todo:
        for name in graph[todo.pop()] - reached:
            reached.add(name)
            todo.append(name)
    assert "course_utils.settings" not in reached, sorted(reached)
