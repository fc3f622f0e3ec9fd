"""The Chinese edition on the course website: a language switch on every page, and the
``notebooks/zh/`` pages shown with the outputs of their English notebooks.

The Chinese notebooks are generated from the English ones (``python -m course_utils.translate``)
with the same code cells — only comments and ``chapter(N, lang="zh")`` differ — so the site
does not execute them a second time (``nb_execution_excludepatterns`` in conf.py). When a
Chinese page is read, its code cells get the outputs of the same cells of the English notebook,
taken from the execution cache the English page has just filled (Sphinx reads
``notebooks/NN_*`` before ``notebooks/zh/NN_*``). Without a cached execution the page shows
its code without outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

ZH = "notebooks/zh/"
# README.zh-CN is the Chinese home page: not in the English sidebar (an orphan), and the
# parent of the Chinese chapters
ZH_HOME = """---
orphan: true
---
"""
ZH_TOCTREE = """

```{toctree}
:hidden:
:glob:
:caption: 中文版

notebooks/zh/*
```
"""
SWITCH = ('<div class="language-switch" style="text-align:right;font-size:0.9em">'
          '<a href="{href}" hreflang="{lang}" lang="{lang}">{label}</a></div>\n')


def counterpart(docname: str, found: set[str]) -> tuple[str, str, str] | None:
    """(docname of the other language, its lang code, the link's label) for a page.

    >>> counterpart("notebooks/06_conv", {"notebooks/zh/06_conv"})
    ('notebooks/zh/06_conv', 'zh-CN', '简体中文')
    """
    if docname.startswith(ZH):
        other, lang, label = "notebooks/" + docname[len(ZH):], "en", "English"
    elif docname == "README.zh-CN":
        other, lang, label = "README", "en", "English"
    elif docname.startswith("notebooks/"):
        other, lang, label = ZH + docname[len("notebooks/"):], "zh-CN", "简体中文"
    else:  # the README and the pages of docs/: the Chinese home page
        other, lang, label = "README.zh-CN", "zh-CN", "简体中文"
    return (other, lang, label) if other in found else None


def with_english_outputs(chinese: dict, english: dict) -> dict:
    """``chinese`` with the outputs (and widget state) of the executed ``english`` notebook,
    cell by cell; unchanged when the two do not have the same cells."""
    same = [c["cell_type"] for c in chinese["cells"]] == [c["cell_type"] for c in english["cells"]]
    if not same:
        return chinese
    for zh, en in zip(chinese["cells"], english["cells"], strict=True):
        if zh["cell_type"] == "code":
            zh["outputs"], zh["execution_count"] = en.get("outputs", []), en.get("execution_count")
    for key in ("widgets", "language_info"):  # widget state; the lexer (ipython3: ! lines)
        if key in english.get("metadata", {}):
            chinese["metadata"][key] = english["metadata"][key]
    return chinese


def _executed_english(app, docname: str) -> dict | None:
    import nbformat
    from jupyter_cache import get_cache

    source = Path(app.srcdir) / ("notebooks/" + docname[len(ZH):] + ".ipynb")
    if not source.exists():
        return None
    try:
        _, executed = get_cache(app.config.nb_execution_cache_path).merge_match_into_notebook(
            nbformat.read(source, as_version=4))
    except KeyError:  # not executed (yet): the page shows its code only
        return None
    return json.loads(nbformat.writes(executed))


def _outputs_from_english(app, docname, source):
    if docname == "README.zh-CN":
        source[0] = ZH_HOME + source[0] + ZH_TOCTREE
    elif docname.startswith(ZH):
        english = _executed_english(app, docname)
        if english is not None:
            chinese = with_english_outputs(json.loads(source[0]), english)
            source[0] = json.dumps(chinese, ensure_ascii=False)


def _language_switch(app, pagename, templatename, context, doctree):
    found = counterpart(pagename, app.env.found_docs)
    if found and "body" in context:
        other, lang, label = found
        href = app.builder.get_relative_uri(pagename, other)
        context["body"] = SWITCH.format(href=href, lang=lang, label=label) + context["body"]


def setup_zh(app) -> None:
    app.connect("source-read", _outputs_from_english)
    app.connect("html-page-context", _language_switch)
