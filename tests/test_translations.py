"""The Chinese edition (notebooks/zh/, exercises with lang="zh") against its one source.

The English notebooks are the source of the code; the Chinese notebooks are generated from them
and the PO catalogues by ``python tools/translate.py``. These tests fail when a committed
Chinese notebook is not what the generator makes, when an English cell changed after its
translation was made (naming the notebook, the cell and the stale entry), when a code cell
differs from the English one in anything but comments and the lang rule, when an exercise
message has no Chinese, and when a glossary term is not used where its English term is.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tokenize
from dataclasses import replace
from pathlib import Path

import polib
import pytest
import translate  # tools/translate.py (tests/conftest.py puts tools/ on sys.path)
from _helpers import all_exercises

from course_utils import i18n as course_i18n
from course_utils.exercises import chapter, i18n

ROOT = Path(__file__).resolve().parent.parent
ENGLISH = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHINESE = sorted((ROOT / "notebooks" / "zh").glob("*.ipynb"))
CATALOGUES = sorted((ROOT / "locales" / "zh_CN" / "notebooks").glob("*.po"))
EXERCISE_PO = ROOT / "course_utils" / "locale" / "zh_CN" / "exercises.po"
MESSAGES_PO = ROOT / "course_utils" / "locale" / "zh_CN" / "messages.po"


@pytest.fixture(autouse=True)
def _course_language_reset():
    """chapter(N, lang="zh") sets the language of the whole process: back to the default."""
    yield
    course_i18n.set_language(None)


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


# ----------------------------------------------------------------------------- one source
def test_every_english_notebook_has_a_catalogue_and_a_chinese_notebook():
    missing = [p.name for p in ENGLISH
               if not (ROOT / "locales/zh_CN/notebooks" / p.with_suffix(".po").name).exists()
               or not (ROOT / "notebooks/zh" / p.name).exists()]
    assert not missing, (f"no Chinese edition of {missing}: run python tools/translate.py"
                         " --update, translate locales/zh_CN/notebooks/<name>.po, run it again")
    orphans = {p.name for p in CHINESE} - {p.name for p in ENGLISH}
    assert not orphans, f"Chinese notebooks without an English source: {orphans}"


@pytest.mark.parametrize("path", CHINESE, ids=lambda p: p.name)
def test_committed_chinese_notebook_is_what_the_generator_makes(path):
    text, _ = translate.build(path.name)
    assert text is not None, f"{path.name}: its catalogue is gone"
    assert path.read_text(encoding="utf-8") == text, (
        f"notebooks/zh/{path.name} differs from what python tools/translate.py makes "
        "(edited by hand, or the English notebook / catalogue changed): run the command")


@pytest.mark.parametrize("path", [p for p in ENGLISH if (ROOT / "notebooks/zh" / p.name).exists()],
                         ids=lambda p: p.name)
def test_every_cell_has_a_current_translation(path):
    _, problems = translate.build(path.name)
    assert not problems, "stale or missing translations:\n" + "\n".join(problems)


def _code_tokens(source: str) -> list[tuple[int, str]]:
    python = "".join(m.group(1) + "pass\n" if (m := translate._MAGIC.match(line)) else line
                     for line in source.splitlines(keepends=True))
    skip = {tokenize.COMMENT, tokenize.NL}
    try:
        return [(t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(python).readline)
                if t.type not in skip]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return [(-1, source)]


@pytest.mark.parametrize("path", CHINESE, ids=lambda p: p.name)
def test_code_cells_are_the_english_code(path):
    english, chinese = _cells(ROOT / "notebooks" / path.name), _cells(path)
    assert [(c["cell_type"], c.get("id")) for c in english] == \
           [(c["cell_type"], c.get("id")) for c in chinese], "cells added, removed or reordered"
    for i, (en, zh) in enumerate(zip(english, chinese, strict=True)):
        if en["cell_type"] != "code":
            continue
        want = translate.english_code("".join(en["source"]))
        got = "".join(zh["source"])
        assert _code_tokens(got) == _code_tokens(want), f"{path.name} cell {i}: code differs"
        assert not zh["outputs"] and zh["execution_count"] is None, f"{path.name} cell {i}"
        if re.search(r"\bchapter\(\d+\)", "".join(en["source"])):
            assert re.search(r'\bchapter\(\d+, lang="zh"\)', got), f"{path.name} cell {i}"


@pytest.mark.parametrize("path", CHINESE, ids=lambda p: p.name)
def test_chinese_notebook_sets_the_language_before_using_course_utils(path):
    """The data-source lines and errors of the first cells are Chinese too: the setup cell
    calls set_language("zh") before anything else of course_utils is imported."""
    code = "\n".join("".join(c["source"]) for c in _cells(path) if c["cell_type"] == "code")
    first_use = re.search(r"^(from course_utils\.(?!i18n\b)|import course_utils)", code,
                          re.MULTILINE)
    chosen = code.find('set_language("zh")')
    assert first_use and 0 <= chosen < first_use.start(), f"{path.name}: no set_language first"


@pytest.mark.parametrize("path", CHINESE, ids=lambda p: p.name)
def test_relative_links_work_from_notebooks_zh(path):
    for i, cell in enumerate(_cells(path)):
        if cell["cell_type"] == "markdown":
            for _, target in translate._LINK.findall("".join(cell["source"])):
                found = (path.parent / target.split("#")[0]).exists()
                assert found, f"{path.name} cell {i}: {target}"


def test_no_line_break_inside_a_chinese_sentence():
    """A hard wrap between two Chinese characters shows as a space in browsers, JupyterLab and
    the Sphinx site: the generator joins them, README.zh-CN.md is written without them."""
    found = [f"{path.name} cell {i}: {b}" for path in CHINESE
             for i, cell in enumerate(_cells(path)) if cell["cell_type"] == "markdown"
             for b in translate.cjk_breaks("".join(cell["source"]))]
    found += [f"README.zh-CN.md: {b}" for b in
              translate.cjk_breaks((ROOT / "README.zh-CN.md").read_text(encoding="utf-8"))]
    assert not found, "line breaks inside Chinese sentences:\n" + "\n".join(found)


def test_the_generator_joins_lines_between_chinese_characters_only():
    markdown = ("第一行，\n第二行。English\nwrap 中文\n\n## 标题\n正文\n"
                "```python\n# 注释\n# 续行\n```\n| 表 |\n| 格 |\n- 列表\n续行")
    assert translate.join_cjk_lines(markdown) == (
        "第一行，第二行。English\nwrap 中文\n\n## 标题\n正文\n"
        "```python\n# 注释\n# 续行\n```\n| 表 |\n| 格 |\n- 列表续行")
    assert translate.cjk_breaks(markdown) == ["第一行，⏎第二行。Englis", "- 列表⏎续行"]
    assert translate.cjk_breaks(translate.join_cjk_lines(markdown)) == []
    quoted = "> **易错点：** 第一行\n> 第二行\n> > 更深一层\n> 回到一层\n正文"
    assert translate.join_cjk_lines(quoted) == \
        "> **易错点：** 第一行第二行\n> > 更深一层\n> 回到一层\n正文"


def _sandbox(tmp_path, monkeypatch, name="06_conv_pool_activation.ipynb"):
    """A copy of one English notebook with its catalogue, and the generator pointed at it."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "po").mkdir()
    shutil.copy(ROOT / "notebooks" / name, tmp_path / "notebooks" / name)
    po = Path(name).with_suffix(".po").name
    shutil.copy(ROOT / "locales/zh_CN/notebooks" / po, tmp_path / "po" / po)
    shutil.copy(EXERCISE_PO, tmp_path / "exercises.po")
    shutil.copy(MESSAGES_PO, tmp_path / "messages.po")
    for attr, value in [("ROOT", tmp_path), ("NOTEBOOKS", tmp_path / "notebooks"),
                        ("OUT", tmp_path / "notebooks" / "zh"), ("CATALOGUES", tmp_path / "po"),
                        ("EXERCISES_PO", tmp_path / "exercises.po"),
                        ("MESSAGES_PO", tmp_path / "messages.po")]:
        monkeypatch.setattr(translate, attr, value)
    return tmp_path / "notebooks" / name, tmp_path / "po" / po


def test_a_changed_english_cell_names_the_stale_translation(tmp_path, monkeypatch):
    nb_path, po_path = _sandbox(tmp_path, monkeypatch)
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    index = next(i for i, c in enumerate(nb["cells"]) if "**Pitfall:**" in "".join(c["source"]))
    old = "".join(nb["cells"][index]["source"])
    old_translation = polib.pofile(str(po_path)).find(old).msgstr
    nb["cells"][index]["source"] = [old.replace("int64", "a 64-bit integer tensor")]
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")

    _, problems = translate.build(nb_path.name)
    assert any(f"cell {index} " in p and "no translation" in p for p in problems), problems

    translate.update()  # msgmerge: the old translation comes back, marked fuzzy
    entry = polib.pofile(str(po_path)).find(old.replace("int64", "a 64-bit integer tensor"))
    assert entry.fuzzy and entry.previous_msgid == old and entry.msgstr == old_translation
    text, problems = translate.build(nb_path.name)
    assert [p for p in problems if f"cell {index} " in p and "fuzzy" in p], problems
    cell = json.loads(text)["cells"][index]
    assert "a 64-bit integer tensor" in "".join(cell["source"]), "a stale translation was used"
    assert translate.main(["--check"]) == 1


def test_generator_and_update_are_deterministic(tmp_path, monkeypatch):
    nb_path, po_path = _sandbox(tmp_path, monkeypatch)
    translate.update()
    first = po_path.read_text(encoding="utf-8"), (tmp_path / "exercises.po").read_bytes()
    assert translate.main([]) == 0
    generated = (tmp_path / "notebooks/zh" / nb_path.name).read_text(encoding="utf-8")
    translate.update()
    assert translate.main([]) == 0
    assert (po_path.read_text(encoding="utf-8"), (tmp_path / "exercises.po").read_bytes()) == first
    assert (tmp_path / "notebooks/zh" / nb_path.name).read_text(encoding="utf-8") == generated
    assert po_path.read_text(encoding="utf-8") == \
        (ROOT / "locales/zh_CN/notebooks" / po_path.name).read_text(encoding="utf-8"), \
        "the committed catalogue is not merged with the current English notebook (--update)"


# ----------------------------------------------------------------------------- exercises
def test_every_exercise_message_has_a_current_translation():
    problems = translate.exercise_problems()
    assert not problems, "exercise messages without Chinese:\n" + "\n".join(problems)


def test_translations_keep_the_placeholders():
    for path in (EXERCISE_PO, MESSAGES_PO):
        for entry in polib.pofile(str(path)).translated_entries():
            assert i18n.placeholders(entry.msgstr) == i18n.placeholders(entry.msgid), entry.msgid


_CODE = re.compile(r"`[^`]*`|\{(?:[^{}]|\{[^{}]*\})*\}|\S*[._()=\[\]<>/'\"]\S*")
_ENGLISH_WORDS = re.compile(r"\b[A-Za-z]{2,}(?:[ ,]+[A-Za-z]{2,}){2,}\b")


def test_no_english_sentences_left_in_the_chinese_messages():
    """Three English words in a row, outside code and placeholders, are untranslated text."""
    entries = [e for path in (EXERCISE_PO, MESSAGES_PO)
               for e in polib.pofile(str(path)).translated_entries()]
    for entry in entries:
        prose = _CODE.sub(" ", entry.msgstr)
        assert not _ENGLISH_WORDS.search(prose), f"English left in {entry.msgstr!r}"


@pytest.mark.parametrize("ex", all_exercises(), ids=lambda e: e.key)
def test_each_exercise_prints_chinese(ex, capsys):
    zh = replace(ex, lang="zh")
    i18n.MISSED.clear()
    zh.question()
    zh.hint()
    zh.solution()
    zh.check()
    for answer in ex.wrong:
        zh.check(answer)
    out = capsys.readouterr().out
    assert not i18n.MISSED, f"{ex.key}: shown in English: {i18n.MISSED}"
    assert "练习" in out and "提示" in out and "解法" in out and "还没有作答" in out


def test_chapter_lang_choice(capsys):
    chapter(6, lang="zh").q2.check(14)
    assert "忘了 dilation" in capsys.readouterr().out
    chapter(6).q2.check(14)
    out = capsys.readouterr().out
    assert "forgets the dilation" in out and "练习" not in out
    assert chapter(6, lang="zh").q2.check((28 + 2 - 4 - 1) // 2 + 1)
    assert "正确" in capsys.readouterr().out
    chapter(6, lang="zh").q1.solution()
    out = capsys.readouterr().out
    assert "# 卷积核的第 1–2 行" in out and "answer = 0 * 1 + 1 * 2" in out  # comment only
    with pytest.raises(ValueError, match="lang='fr'"):
        chapter(6, lang="fr")


# ----------------------------------------------------------------------------- run time
def test_every_run_time_message_has_a_current_translation():
    problems = translate.runtime_problems()
    assert not problems, "course_utils messages without Chinese:\n" + "\n".join(problems)
    assert len(course_i18n.runtime_messages()) >= 40  # tb, image_check, layers, viz, predict


def _errors() -> list[str]:
    """The messages of a few course_utils errors a learner meets."""
    import numpy as np

    from course_utils import layers, predict, tb, viz

    calls = [lambda: tb.check_image(np.zeros((32, 32, 3), np.uint8)),  # HWC read as CHW
             lambda: tb.check_image(np.zeros((3, 8, 8)) + 2.0),
             lambda: layers.conv_output_size(3, 5),
             lambda: layers.pool_output_size(4, 2, padding=2),
             lambda: predict.preprocess(123),
             lambda: viz.show_images([])]
    found = []
    for call in calls:
        with pytest.raises((ValueError, TypeError)) as info:
            call()
        found.append(str(info.value))
    return found


def test_one_language_setting_for_the_course_messages(monkeypatch):
    monkeypatch.delenv(course_i18n.ENV, raising=False)
    course_i18n.MISSED.clear()
    try:
        chapter(3, lang="zh")  # what a Chinese notebook calls: the whole kernel speaks Chinese
        chinese = _errors()
        assert all(re.search("[\u4e00-\u9fff]", m) for m in chinese), chinese
        assert "通道" in chinese[0] and "dataformats='HWC'" in chinese[0]
        assert "looks like" not in chinese[0]  # the N_() fragment in its placeholder too
        assert "2" in chinese[1] and "255" in chinese[1]  # the values are kept
        assert "5" in chinese[2] and "3 + 2·0 = 3" in chinese[2]
        assert "int" in chinese[4] and not course_i18n.MISSED, course_i18n.MISSED
        chapter(3)  # an English notebook: English again
        english = _errors()
        assert "It looks like HWC data" in english[0] and "got int" in english[4]
        assert not any(re.search("[\u4e00-\u9fff]", m) for m in english), english
        monkeypatch.setenv(course_i18n.ENV, "zh_CN.UTF-8")  # the setting, when none is chosen
        course_i18n.set_language(None)
        assert course_i18n.language() == "zh" and "通道" in _errors()[0]
        assert chapter(3).q1.lang == "zh"
        monkeypatch.setenv(course_i18n.ENV, "fr")
        assert course_i18n.set_language(None) == "en"
    finally:
        course_i18n.set_language(None)


def test_the_data_source_line_speaks_the_course_language(monkeypatch, capsys):
    from course_utils import data

    monkeypatch.setenv("COURSE_OFFLINE", "1")  # the bundled sample, at once
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    course_i18n.set_language("zh")
    data.cifar10(train=False)
    data.hymenoptera()
    out = capsys.readouterr().out
    assert "CIFAR-10 测试集：自带的样本" in out and "要用完整的数据集" in out, out
    assert "蚂蚁/蜜蜂：自带的样本" in out and "bundled sample" not in out, out
    course_i18n.set_language("en")
    data.cifar10(train=False)
    assert "CIFAR-10 test: bundled sample" in capsys.readouterr().out


def test_course_lang_reaches_a_fresh_process():
    code = "from course_utils import layers; layers.conv_output_size(3, 5)"
    env = {**os.environ, course_i18n.ENV: "zh"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 1 and "请用更小的卷积核" in done.stderr, done.stderr[-500:]


def test_templates_match_formatted_messages():
    parts = i18n.split_template("got {n} and {n}, {{literal}}")
    assert parts == [(False, "got "), (True, "{n}"), (False, " and "), (True, "{n}"),
                     (False, ", {literal}")]
    template = i18n._compile("{x} is off by {d:.2f}.", "{x} 差了 {d:.2f}。")
    found = template.pattern.fullmatch("3 is off by 0.50.")
    assert found and found.group(template.names["{d:.2f}"]) == "0.50"


# ----------------------------------------------------------------------------- glossary
def _glossary() -> list[tuple[list[str], re.Pattern]]:
    lines = [line for line in (ROOT / "locales/glossary.tsv").read_text(encoding="utf-8")
             .splitlines() if line and not line.startswith("#")]
    rows = list(csv.DictReader(lines, delimiter="\t"))
    return [([w.strip() for w in r["zh"].split("/")], re.compile(r["en"])) for r in rows]


_NOT_PROSE = re.compile(r"```.*?```|`[^`]*`|\$\$.*?\$\$|\$[^$]*\$|<https?://[^>]*>|\]\([^)]*\)",
                        re.DOTALL)
_CALL = re.compile(r"[\w.]+\([^()]*\)")  # train_step(model, optimizer, ...), a.b(c)
_CODE_BITS = [
    re.compile(r"\{(?:[^{}]|\{[^{}]*\})*\}"),  # placeholders of the exercise messages
    re.compile(r"(?<!\w)'[^'\n]*'(?!\w)|(?<!\w)\"[^\"\n]*\"(?!\w)"),  # 'quoted', "quoted"
    re.compile(r"(?<!\w)--?[A-Za-z][\w-]*"),  # --epochs
    re.compile(r"⌊[^⌋]*⌋"),  # a formula
    re.compile(r"\b\w+\s*=\s*"),  # loss = ...
    re.compile(r"\S*(?:\w[._=/]\w|\w\()\S*"),  # torch.nn, kernel_size, run/checkpoints, f(
]
_TERMS_TABLE_ROW = re.compile(r"^\|[^|\n]*[\u4e00-\u9fff][^\n]*$", re.MULTILINE)  # 中文 | English
_SENTENCE_START = re.compile(r"(^|[.!?]\s+|\n[\W\d]*)([A-Z])(?=[a-z]+\b)")


def _prose(text: str) -> str:
    """The English words of a cell or message: no code, math, links, quoted names, options,
    calls, formulas or identifiers; each sentence's first letter lower-cased."""
    text = _NOT_PROSE.sub(" ", _TERMS_TABLE_ROW.sub(" ", text))
    for pattern in _CODE_BITS[:3]:
        text = pattern.sub(" ", text)
    while _CALL.search(text):  # innermost calls first: f(g(x)) -> f( ) -> ' '
        text = _CALL.sub(" ", text)
    for pattern in _CODE_BITS[3:]:
        text = pattern.sub(" ", text)
    return _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).lower(), text)


def _glossary_misses(entries, glossary) -> list[str]:
    misses = []
    for entry in entries:
        english = _prose(entry.msgid)
        for zh, pattern in glossary:
            if pattern.search(english) and not any(w in entry.msgstr for w in zh):
                misses.append(f"{'/'.join(zh)} for {pattern.pattern!r} in {entry.msgid[:60]!r}")
    return misses


def test_glossary_terms_are_used_where_their_english_terms_are():
    glossary = _glossary()
    assert len(glossary) >= 20 and any("卷积核" in zh for zh, _ in glossary)
    misses = []
    for path in CATALOGUES + [EXERCISE_PO]:
        entries = polib.pofile(str(path)).translated_entries()
        misses += [f"{path.name}: {m}" for m in _glossary_misses(entries, glossary)]
    assert not misses, "glossary terms not used:\n" + "\n".join(misses)


def _avoided() -> list[tuple[str, re.Pattern]]:
    """(the glossary's word, the wrong variants to avoid) of each row that names some."""
    lines = [line for line in (ROOT / "locales/glossary.tsv").read_text(encoding="utf-8")
             .splitlines() if line and not line.startswith("#")]
    return [(r["zh"], re.compile(r["avoid"])) for r in csv.DictReader(lines, delimiter="\t")
            if r.get("avoid")]


def _chinese_texts() -> list[tuple[str, str]]:
    """(where, text) of every Chinese text: translations of all catalogues, the generated
    notebooks' markdown and comments, README.zh-CN.md."""
    texts = [(f"{p.name}: {e.msgid[:40]!r}", e.msgstr)
             for p in CATALOGUES + sorted((ROOT / "course_utils/locale/zh_CN").glob("*.po"))
             for e in polib.pofile(str(p)).translated_entries()]
    for path in CHINESE:
        english = _cells(ROOT / "notebooks" / path.name)
        for i, cell in enumerate(_cells(path)):
            source = "".join(cell["source"])
            if i < len(english) and source == "".join(english[i]["source"]):
                continue  # not translated (yet): the English text, reported by other tests
            if cell["cell_type"] == "code":
                source = "\n".join(t for _, _, t in i18n.code_comments(source))
            texts.append((f"notebooks/zh/{path.name} cell {i}", source))
    texts.append(("README.zh-CN.md", (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")))
    return texts


def test_the_chinese_text_avoids_the_wrong_variants():
    """步幅 (but once, quoted, in 06), 学习率计划, 断点 for checkpoint, 标签页 for a tab."""
    avoided = _avoided()
    assert {"步长", "检查点", "学习率调度 / 调度", "标签（tag）"} <= {zh for zh, _ in avoided}
    found = [f"{where}: {m.group()!r} (use {zh})" for where, text in _chinese_texts()
             for zh, pattern in avoided for m in pattern.finditer(text)]
    assert not found, "wrong variants of glossary terms:\n" + "\n".join(found)
    chapter6 = polib.pofile(str(ROOT / "locales/zh_CN/notebooks/06_conv_pool_activation.po"))
    named = [e for e in chapter6.translated_entries() if "“步幅”" in e.msgstr]
    assert named, "06 names d2l-zh's word 步幅 once, next to 步长"
    stride = next(p for z, p in _avoided() if z == "步长")
    assert stride.search("步幅为 2") and not stride.search("把它叫作“步幅”")


def test_the_glossary_check_sees_prose_not_code():
    glossary = _glossary()
    entry = polib.POEntry(msgid="The stride moves the kernel; `stride=2` halves it.",
                          msgstr="步长让窗口移动；`stride=2` 把它减半。")
    assert _glossary_misses([entry], glossary) == [
        f"卷积核/池化核 for {next(p for z, p in glossary if '卷积核' in z).pattern!r} in "
        f"{entry.msgid[:60]!r}"]
    code_only = polib.POEntry(msgid="call optimizer.step() with `lr=0.1`",
                              msgstr="调用 optimizer.step()")
    assert _glossary_misses([code_only], glossary) == []
    jupyter = polib.POEntry(msgid="restart: the kernel is restarted", msgstr="内核被重启了")
    assert _glossary_misses([jupyter], glossary) == []


# ----------------------------------------------------------------------------- README
_FENCE_LINE = re.compile(r"^\s*```")


def _blocks(text: str) -> list[tuple[str, str]]:
    """The top-level blocks of a markdown text: ("heading", ""), ("code", its commands without
    comments),
    ("table", ""), ("item", "") for a list item (its indented lines included), ("para", "**"
    for a paragraph that starts in bold, else "")."""
    blocks: list[tuple[str, str]] = []
    code: list[str] | None = None
    previous_blank = True
    for line in text.splitlines():
        if code is not None:
            if _FENCE_LINE.match(line):
                blocks.append(("code", "\n".join(code)))
                code = None
            elif line.split("#")[0].strip():
                code.append(" ".join(line.split("#")[0].split()))
            continue
        if _FENCE_LINE.match(line) and not line[0].isspace():
            code = []
        elif not line.strip():
            previous_blank = True
            continue
        elif line.startswith("#"):
            blocks.append(("heading", ""))
        elif line[0].isspace() and blocks and blocks[-1][0] == "item":
            pass  # an item's continuation: text, a nested list or table
        elif re.match(r"[*-] ", line):
            blocks.append(("item", ""))
        elif line.startswith("|"):
            if not blocks or blocks[-1][0] != "table" or previous_blank:
                blocks.append(("table", ""))
        elif previous_blank or blocks[-1][0] != "para":
            blocks.append(("para", "**" if line.startswith("**") else ""))
        previous_blank = False
    return blocks


def _sections(path: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    """(heading level, blocks) of every section of a README: the part before the first "## "
    and each "## " section."""
    parts = re.split(r"^## .*$", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return [(f"section {i}", _blocks(part)) for i, part in enumerate(parts)]


def test_chinese_readme_is_in_step_with_the_english_one():
    """Section by section, README.zh-CN.md has the blocks of README.md in the same order: the
    same code blocks (commands; comments may be translated), tables, list items and paragraphs
    (a troubleshooting entry starts in bold in both)."""
    english, chinese = ROOT / "README.md", ROOT / "README.zh-CN.md"
    assert "(README.zh-CN.md)" in english.read_text(encoding="utf-8")
    text = chinese.read_text(encoding="utf-8")
    assert "(README.md)" in text
    en, zh = _sections(english), _sections(chinese)
    assert len(zh) == len(en), "README.zh-CN.md has other ## sections than README.md"
    headings = re.findall(r"^## (.*)$", english.read_text(encoding="utf-8"), re.MULTILINE)
    for (_, en_blocks), (_, zh_blocks), title in zip(en, zh, ["(top)"] + headings, strict=True):
        assert [k for k, _ in zh_blocks] == [k for k, _ in en_blocks], (
            f"README.zh-CN.md section {title!r}: blocks {[k for k, _ in zh_blocks]} but "
            f"README.md has {[k for k, _ in en_blocks]}: translate what is missing")
        for (kind, en_text), (_, zh_text) in zip(en_blocks, zh_blocks, strict=True):
            if kind == "code" or (kind == "para" and title != "(top)"):  # top: language links
                assert zh_text == en_text, \
                    f"section {title!r}: {kind} differs:\n{en_text}\n--\n{zh_text}"
    missing = [p.name for p in ENGLISH if f"(notebooks/zh/{p.name})" not in text]
    assert not missing, f"README.zh-CN.md's chapter table lacks {missing}"


def test_readme_structure_sees_a_missing_paragraph():
    english = "## A\n\nOne.\n\n```bash\nrun it  # go\n```\n\n* item\n  more\n\n**Bold.** text\n"
    assert _blocks(english) == [("heading", ""), ("para", ""), ("code", "run it"), ("item", ""),
                                ("para", "**")]
    assert _blocks("## A\n\n一。\n\n```bash\nrun it  # 运行\n```\n\n* 项\n  续\n") == \
        [("heading", ""), ("para", ""), ("code", "run it"), ("item", "")]
