"""Where the exercises' catalogue comes from: every text the checkers show, found in the source.

``exercise_messages()`` reads ``course_utils/exercises/*.py`` with :mod:`ast` and returns each
message as it is written — a str constant, or an f-string with its placeholders as written
(``"give a number, got {type(answer).__name__}."``): the messages of ``expect``,
``AssertionError``, ``_say`` and ``N_``, each Exercise's prompt and hint, and the comments of
its ``solution_code``. The f-strings of MESSAGE_MODULES are added too: exercise 3.2 passes on
the errors of ``tb.check_image``. ``python tools/translate.py --update`` merges them into
``course_utils/locale/zh_CN/exercises.po``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from course_utils.exercises.i18n import code_comments, split_template

PACKAGE = Path(__file__).resolve().parent.parent
#: modules whose error messages an exercise shows (exercise 3.2 passes on tb.check_image's)
MESSAGE_MODULES = ["image_check.py"]
_NOT_PROSE = re.compile(r"#\s*(noqa|fmt:|type:|pragma)|^#[^A-Za-z]*$")


def _template(node: ast.expr) -> str | None:
    """The source text of a message: a str constant or an f-string as written (also inside
    the run-time markers ``tr(...)``/``N_(...)`` of course_utils.i18n)."""
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("tr", "N_") and node.args:
        return _template(node.args[0])
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.replace("{", "{{").replace("}", "}}")
    if not isinstance(node, ast.JoinedStr):
        return None
    out = []
    for part in node.values:
        if isinstance(part, ast.Constant):
            out.append(part.value.replace("{", "{{").replace("}", "}}"))
        else:
            conv = "" if part.conversion == -1 else "!" + chr(part.conversion)
            spec = ":" + _template(part.format_spec) if part.format_spec else ""
            out.append("{" + ast.unparse(part.value) + conv + spec + "}")
    return "".join(out)


def _messages_of(tree: ast.Module) -> list[ast.expr]:
    """The texts a checker shows: messages of expect/AssertionError/_say/N_, and an
    Exercise's prompt and hint."""
    texts = []
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name = getattr(call.func, "id", getattr(call.func, "attr", ""))
        texts += {"expect": call.args[1:2], "AssertionError": call.args[:1],
                  "_say": call.args[:1], "N_": call.args[:1],
                  "Exercise": call.args[1:2] + [k.value for k in call.keywords
                                                if k.arg == "hint_text"]}.get(name, [])
    return texts


def _solution_comments(tree: ast.Module) -> list[ast.Constant]:
    """Each comment of an Exercise's solution_code, as a str constant (line of the code)."""
    found = []
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        for k in call.keywords:
            if k.arg == "solution_code" and isinstance(k.value, ast.Constant):
                found += [ast.Constant(text, lineno=k.value.lineno + row, col_offset=col)
                          for row, col, text in code_comments(k.value.value)
                          if not _NOT_PROSE.search(text)]
    return found


def exercise_messages() -> dict[str, list[tuple[str, str]]]:
    """template -> occurrences, for every message the exercises print (and every f-string of
    the modules in MESSAGE_MODULES, whose errors a checker passes on)."""
    found: dict[str, list[tuple[str, str]]] = {}
    paths = sorted((PACKAGE / "exercises").glob("*.py")) + [PACKAGE / m for m in MESSAGE_MODULES]
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        texts = _messages_of(tree) + _solution_comments(tree)
        if path.name in MESSAGE_MODULES:
            specs = {id(n.format_spec) for n in ast.walk(tree) if isinstance(n, ast.FormattedValue)}
            texts += [n for n in ast.walk(tree)
                      if isinstance(n, ast.JoinedStr) and id(n) not in specs]
            texts += [n.args[0] for n in ast.walk(tree) if isinstance(n, ast.Call) and n.args
                      and getattr(n.func, "id", "").endswith("Error")]
            texts += [n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)]
        for arg in sorted(texts, key=lambda n: (n.lineno, n.col_offset)):
            text = _template(arg)
            if any(not field and re.search("[A-Za-z]", part)
                   for field, part in split_template(text or "")):
                where = (path.relative_to(PACKAGE.parent).as_posix(), str(arg.lineno))
                if where not in found.setdefault(text, []):
                    found[text].append(where)
    return found
