"""The Chinese edition, generated: ``python tools/translate.py [--update] [--check]``.

A maintainers' tool (run from the repository root), not part of the learner's package.

One source, two languages. The English notebooks ``notebooks/NN_name.ipynb`` are the source of
the code; ``notebooks/zh/NN_name.ipynb`` is built from them and the gettext catalogue
``locales/zh_CN/notebooks/NN_name.po``, whose ``msgid`` is the English text of a markdown cell
or of a comment in a code cell and whose ``msgstr`` is its translation:

- markdown cells are replaced by their translation (links to ``images/…`` get ``../``);
- code cells are copied; only their comments are translated, ``chapter(N)`` becomes
  ``chapter(N, lang="zh")`` and the setup cell sets the language of everything ``course_utils``
  prints with ``set_language("zh")`` before its first import (the code rules, ``CODE_RULES``);
- text with no exact, non-fuzzy translation stays English and is reported.

``--update`` merges the catalogues with the current English text the way ``msgmerge`` does: a
changed cell gets a new entry that keeps the old translation, marked ``fuzzy`` with the old
English as ``#| msgid`` (a translator fixes it and removes the flag); unused entries become
obsolete (``#~``). It also extracts the exercises' messages into
``course_utils/locale/zh_CN/exercises.po`` (see ``course_utils/exercises/i18n.py``) and the
run-time messages of the course's modules (``tr(...)``, see ``course_utils/i18n.py``) into
``course_utils/locale/zh_CN/messages.po``.
``--check`` writes nothing and exits 1 when a translation is missing or stale, or a committed
Chinese notebook differs from what this command generates.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import io
import json
import os
import re
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

import polib

from course_utils.exercises.messages import exercise_messages
from course_utils.i18n import runtime_messages

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
LANG, FOLDER = "zh", "zh_CN"
OUT = NOTEBOOKS / LANG
CATALOGUES = ROOT / "locales" / FOLDER / "notebooks"
EXERCISES_PO = ROOT / "course_utils" / "locale" / FOLDER / "exercises.po"
MESSAGES_PO = ROOT / "course_utils" / "locale" / FOLDER / "messages.po"
CODE_RULES = [
    (re.compile(r"\bchapter\((\d+)\)"), rf'chapter(\1, lang="{LANG}")'),
    # the setup cell: everything course_utils prints or raises in this kernel in Chinese, from
    # its first line on (data sources, errors), before any chapter(N, lang="zh") call
    (re.compile(r"^from course_utils\.settings import describe_run$", re.MULTILINE),
     "from course_utils.i18n import set_language\n"
     f'set_language("{LANG}")  # 课程工具包的消息用中文\n'
     "from course_utils.settings import describe_run"),
]
_MAGIC = re.compile(r"^(\s*)[%!]")
_NOT_PROSE = re.compile(r"#\s*(noqa|fmt:|type:|pragma)|^#[^A-Za-z]*$")
_LINK = re.compile(r'(\]\(|src=")(?![a-z]+:|#|/)([^)"\s]+)')
#: a Chinese character or Chinese punctuation (ideographs, CJK and full-width punctuation,
#: curly quotes, …, —)
CJK = "\u2e80-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\u2018\u2019\u201c\u201d\u2026\u2014"
#: a line break inside a Chinese sentence: browsers, JupyterLab and Sphinx show it as a space
CJK_BREAK = re.compile(rf"(?<=[{CJK}])[ \t]*\n[ \t]*(?=[{CJK}])")
_QUOTE = re.compile(r"^(\s*>)*\s?")
_FENCE = re.compile(r"^\s*(```|~~~)")
_BLOCK_LINE = re.compile(r"^\s*(#|\||<|\$\$)")  # a heading, table row, HTML or math line


@dataclass
class Unit:
    """One piece of English text to translate: a markdown cell or a comment block."""

    cell: int
    text: str
    rows: tuple[int, int] = (0, 0)  # code comments: first and last line (0-based)
    col: int = 0
    inline: bool = False
    comment: bool = False


def comment_blocks(source: str) -> list[Unit]:
    """The comments of one code cell, consecutive full-line comments joined into one unit."""
    lines = source.splitlines(keepends=True)
    python = "".join(m.group(1) + "pass\n" if (m := _MAGIC.match(line)) else line
                     for line in lines)
    try:
        found = [t for t in tokenize.generate_tokens(io.StringIO(python).readline)
                 if t.type == tokenize.COMMENT]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []  # not Python (e.g. %%bash): copied as it is
    units: list[Unit] = []
    for tok in found:
        (row, col), text = tok.start, tok.string.rstrip()
        row -= 1
        if _NOT_PROSE.search(text):
            continue
        inline = bool(lines[row][:col].strip())
        last = units[-1] if units else None
        if (not inline and last and not last.inline and last.col == col
                and last.rows[1] == row - 1):
            last.text += "\n" + text
            last.rows = (last.rows[0], row)
        else:
            units.append(Unit(-1, text, (row, row), col, inline, comment=True))
    return units


def english_code(source: str) -> str:
    """A code cell with the code rules applied (what the Chinese cell holds, less comments)."""
    for pattern, replacement in CODE_RULES:
        source = pattern.sub(replacement, source)
    return source


def units_of(nb: dict) -> list[Unit]:
    """Every unit of a notebook, in order."""
    units = []
    for i, cell in enumerate(nb["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and source.strip():
            units.append(Unit(i, source))
        elif cell["cell_type"] == "code":
            for unit in comment_blocks(english_code(source)):
                unit.cell = i
                units.append(unit)
    return units


def load_po(path: Path | None = None) -> polib.POFile:
    """The catalogue at ``path`` (an empty one when there is none), with the course's header."""
    exists = path is not None and path.exists()
    po = polib.pofile(str(path), wrapwidth=100) if exists else polib.POFile(wrapwidth=100)
    po.metadata = {"Project-Id-Version": "pytorch-quick-start-course", "Language": FOLDER,
                   "MIME-Version": "1.0", "Content-Type": "text/plain; charset=UTF-8",
                   "Content-Transfer-Encoding": "8bit", "Plural-Forms": "nplurals=1; plural=0;"}
    return po


def lookup(po: polib.POFile) -> dict[str, polib.POEntry]:
    return {e.msgid: e for e in po if not e.obsolete}


def translation_problem(entry: polib.POEntry | None, unit: Unit) -> str | None:
    """Why ``entry`` cannot be used for ``unit`` (None when it can)."""
    if entry is None:
        return "no translation (new or changed English text; run --update)"
    if entry.fuzzy:
        return "stale translation marked fuzzy (the English changed; fix it, drop the flag)"
    if not entry.msgstr.strip():
        return "not translated yet"
    if unit.comment:
        lines = entry.msgstr.split("\n")
        if not all(line.startswith("#") for line in lines) or (unit.inline and len(lines) > 1):
            return "a comment's translation must be comment lines (one line for an inline one)"
    return None


def relink(markdown: str) -> str:
    """Relative links of an English cell, made to work from notebooks/zh/."""
    def fix(m: re.Match) -> str:
        target = (NOTEBOOKS / m.group(2)).resolve()
        if target.suffix == ".ipynb" and target.parent == NOTEBOOKS:
            return m.group(0)  # the Chinese edition has the same file names
        if target == ROOT / "README.md":
            target = ROOT / "README.zh-CN.md"
        return m.group(1) + os.path.relpath(target, OUT).replace(os.sep, "/")
    return _LINK.sub(fix, markdown)


def _join_cjk(markdown: str, found: list[str] | None = None) -> str:
    out: list[str] = []
    fenced = False
    for line in markdown.split("\n"):
        quote = _QUOTE.match(line).group()  # "> " of a block quote: joined lines keep one
        body = line[len(quote):]
        if _FENCE.match(body):
            fenced = not fenced
        elif (out and not fenced and quote.count(">") == _QUOTE.match(out[-1]).group().count(">")
              and not _BLOCK_LINE.match(out[-1][len(_QUOTE.match(out[-1]).group()):])
              and not _FENCE.match(out[-1]) and not _BLOCK_LINE.match(body)
              and CJK_BREAK.search(out[-1] + "\n" + body.lstrip())):
            if found is not None:
                found.append(out[-1].rstrip()[-10:] + "⏎" + body.lstrip()[:10])
            out[-1] = out[-1].rstrip() + body.lstrip()
            continue
        out.append(line)
    return "\n".join(out)


def join_cjk_lines(markdown: str) -> str:
    """``markdown`` with each line break between two Chinese characters removed.

    The translations keep the English hard wrap; Chinese puts no space between words, so
    such a break would show as a stray space (Chrome, JupyterLab, Sphinx). Code blocks,
    headings, table rows, HTML and math lines are kept as they are.

    >>> join_cjk_lines("第一行\n第二行。\n\n## 标题\n正文")
    '第一行第二行。\n\n## 标题\n正文'
    """
    return _join_cjk(markdown)


def cjk_breaks(markdown: str) -> list[str]:
    """The line breaks between two Chinese characters in ``markdown`` (what
    ``join_cjk_lines`` would join), each as ``"…end⏎start…"``."""
    found: list[str] = []
    _join_cjk(markdown, found)
    return found


def translate_code(source: str, units: list[Unit], entries: dict) -> str:
    lines = english_code(source).splitlines(keepends=True)
    for unit in reversed(units):
        entry = entries.get(unit.text)
        if translation_problem(entry, unit):
            continue
        first, last = unit.rows
        if unit.inline:
            end = "\n" if lines[first].endswith("\n") else ""
            lines[first] = lines[first][:unit.col] + entry.msgstr + end
        else:
            end = "\n" if lines[last].endswith("\n") else ""
            new = [" " * unit.col + line for line in entry.msgstr.split("\n")]
            lines[first:last + 1] = [line + "\n" for line in new[:-1]] + [new[-1] + end]
    return "".join(lines)


def build(name: str) -> tuple[str | None, list[str]]:
    """(the Chinese notebook's JSON text, problems) for ``notebooks/<name>``.

    The text is None when the notebook has no catalogue yet.
    """
    nb = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
    po_path = CATALOGUES / Path(name).with_suffix(".po")
    entries = lookup(load_po(po_path))
    units = units_of(nb)
    problems = []
    if not po_path.exists():
        return None, [f"notebooks/{name}: no catalogue {po_path.relative_to(ROOT)} (run "
                      "python tools/translate.py --update, then translate it)"]
    zh = copy.deepcopy(nb)
    for i, cell in enumerate(zh["cells"]):
        source = "".join(cell["source"])
        mine = [u for u in units if u.cell == i]
        if cell["cell_type"] == "markdown" and mine:
            entry = entries.get(source)
            if not translation_problem(entry, mine[0]):
                source = relink(join_cjk_lines(entry.msgstr))
        elif cell["cell_type"] == "code":
            source = translate_code(source, mine, entries)
            cell["outputs"], cell["execution_count"] = [], None
        cell["source"] = source.splitlines(keepends=True)
    for unit in units:
        why = translation_problem(entries.get(unit.text), unit)
        if why:
            cell_id = nb["cells"][unit.cell].get("id", "?")
            problems.append(f"notebooks/{name} cell {unit.cell} (id {cell_id}): {why}: "
                            f"{unit.text[:70]!r}")
    zh["metadata"]["translation"] = {
        "source": f"notebooks/{name}", "catalogue": str(po_path.relative_to(ROOT)),
        "generated_by": "python tools/translate.py (do not edit this file)"}
    return json.dumps(zh, sort_keys=True, indent=1, ensure_ascii=False) + "\n", problems


# ----------------------------------------------------------------------------- update
def _predecessor(msgid: str, where: list, candidates) -> polib.POEntry | None:
    """The old entry a changed text most likely replaces: the closest one (similarity > 0.6),
    or > 0.3 for an entry of the same cell."""
    def score(e):
        ratio = difflib.SequenceMatcher(None, e.msgid, msgid).ratio()
        same_place = any(tuple(o) in {tuple(w) for w in where} for o in e.occurrences)
        return ratio + (0.3 if same_place else 0.0)
    best = max(candidates, key=score, default=None)
    return best if best is not None and score(best) > 0.6 else None


def merge(po: polib.POFile, wanted: dict[str, list[tuple[str, str]]]) -> polib.POFile:
    """``po`` with one entry per wanted msgid, like msgmerge (fuzzy matches, obsolete)."""
    old = {e.msgid: e for e in sorted(po, key=lambda e: not e.obsolete)}  # active ones win
    unused = {k: e for k, e in old.items() if k not in wanted and e.msgstr}
    merged = load_po()
    for msgid, where in wanted.items():
        entry = old.get(msgid)
        if entry is not None:
            entry.obsolete = False  # an obsolete translation of this very text comes back
        else:
            entry = polib.POEntry(msgid=msgid, msgstr="")
            previous = _predecessor(msgid, where, unused.values())
            if previous is not None:
                entry.msgstr, entry.previous_msgid = previous.msgstr, previous.msgid
                entry.flags = ["fuzzy"]
        entry.occurrences = where
        merged.append(entry)
    for entry in unused.values():
        entry.obsolete, entry.occurrences = True, []
        merged.append(entry)
    return merged


def update() -> None:
    """Merge every catalogue with the current English text (creates missing ones)."""
    CATALOGUES.mkdir(parents=True, exist_ok=True)
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        wanted: dict[str, list[tuple[str, str]]] = {}
        for unit in units_of(nb):
            wanted.setdefault(unit.text, []).append((path.name, f"cell{unit.cell}"))
        po_path = CATALOGUES / path.with_suffix(".po").name
        merge(load_po(po_path), wanted).save(str(po_path))
    EXERCISES_PO.parent.mkdir(parents=True, exist_ok=True)
    merge(load_po(EXERCISES_PO), exercise_messages()).save(str(EXERCISES_PO))
    merge(load_po(MESSAGES_PO), runtime_messages()).save(str(MESSAGES_PO))


def _message_problems(path: Path, messages: dict) -> list[str]:
    entries = lookup(load_po(path))
    return [f"{where[0][0]}:{where[0][1]}: {why}: {text[:70]!r}"
            for text, where in messages.items()
            if (why := translation_problem(entries.get(text), Unit(-1, text)))]


def runtime_problems() -> list[str]:
    """Run-time messages of course_utils (``tr(...)``) with no current translation."""
    return _message_problems(MESSAGES_PO, runtime_messages())


def exercise_problems() -> list[str]:
    """Exercise messages, then run-time messages, with no current translation."""
    return _message_problems(EXERCISES_PO, exercise_messages()) + runtime_problems()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/translate.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true",
                        help="merge the PO catalogues with the current English text first")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 on stale/missing translations or notebooks")
    args = parser.parse_args(argv)
    if args.update and not args.check:
        update()
    problems = exercise_problems()
    OUT.mkdir(exist_ok=True)
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        text, found = build(path.name)
        problems += found
        target = OUT / path.name
        if text is None:
            continue
        if args.check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                problems.append(f"{target.relative_to(ROOT)} is not what the generator makes "
                                "(run python tools/translate.py)")
        elif not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
    print("\n".join(problems) or "all translations up to date", file=sys.stderr)
    return 1 if problems and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
