"""The Chinese edition on the course website: a language switch on every page, the
``notebooks/zh/`` pages shown with the outputs of their English notebooks, and Chinese around
them: on a Chinese page (``README.zh-CN`` and ``notebooks/zh/*``) the sidebar lists the Chinese
chapters under their Chinese titles, the home link and the logo lead to the Chinese home page
README.zh-CN, the site title is Chinese, and the banner conf.py puts on every page of a fast-mode
or sample build (``announcement``) is in Chinese (:data:`BANNERS`).

The Chinese notebooks are generated from the English ones (``python tools/translate.py``)
with the same code cells — only comments and ``chapter(N, lang="zh")`` differ — so the site
does not execute them a second time (``nb_execution_excludepatterns`` in conf.py). When a
Chinese page is read, its code cells get the outputs of the same cells of the English notebook
(with the lines course_utils printed translated, as a Chinese kernel prints them), taken from
the execution cache the English page has just filled (Sphinx reads
``notebooks/NN_*`` before ``notebooks/zh/NN_*``). Without a cached execution the page shows
its code without outputs.
"""

from __future__ import annotations

import html
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
#: the site's name on Chinese pages (the logo text and the window title)
ZH_TITLE = "小土堆 PyTorch 快速入门（中文版）"
#: the sidebar caption of the Chinese chapters
ZH_CAPTION = "章节"
#: conf.py's banners (html_theme_options["announcement"]), by how they start, in Chinese;
#: "{data}" is the text after the English prefix (a folder name)
BANNERS = {
    "Built in fast mode":
        "本网站以快速模式（CI/COURSE_FAST）构建，仅供测试：每次运行都缩减成一次快速检查，"
        "所以这些数字不是课程的真实结果。快速模式构建的网站从不发布。",
    "Built offline on the bundled CIFAR-10 sample":
        "本网站是离线在自带的 CIFAR-10 样本（1,000 张训练图像）上构建的："
        "训练达到的准确率远低于在完整数据集上的结果。",
    "Outputs computed on the data in ": "输出是在 {data} 中的数据上计算的。",
}
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


def is_chinese(docname: str) -> bool:
    """Whether ``docname`` is a page of the Chinese edition."""
    return docname == "README.zh-CN" or docname.startswith(ZH)


def chinese_banner(english: str) -> str:
    """conf.py's banner ``english`` in Chinese (unchanged when it is not one of BANNERS).

    >>> chinese_banner("Outputs computed on the data in /data/cifar.")
    '输出是在 /data/cifar 中的数据上计算的。'
    """
    for start, chinese in BANNERS.items():
        if english.startswith(start):
            return chinese.format(data=english[len(start):].rstrip("."))
    return english


def chinese_sidebar(pages: list[tuple[str, str, bool]]) -> str:
    """The sidebar's list of the Chinese chapters, marked up as the theme marks up its own:
    ``pages`` is ``[(href, title, is_the_current_page), ...]``."""
    items = "".join(
        f'<li class="toctree-l1{" current active" if current else ""}">'
        f'<a class="reference internal{" current" if current else ""}" href="{html.escape(href)}">'
        f"{html.escape(title)}</a></li>" for href, title, current in pages)
    return (f'<p aria-level="2" class="caption" role="heading"><span class="caption-text">'
            f'{ZH_CAPTION}</span></p>\n<ul class="current nav bd-sidenav">{items}</ul>')


def with_english_outputs(chinese: dict, english: dict) -> dict:
    """``chinese`` with the outputs (and widget state) of the executed ``english`` notebook,
    cell by cell; unchanged when the two do not have the same cells."""
    same = [c["cell_type"] for c in chinese["cells"]] == [c["cell_type"] for c in english["cells"]]
    if not same:
        return chinese
    for zh, en in zip(chinese["cells"], english["cells"], strict=True):
        if zh["cell_type"] == "code":
            zh["outputs"] = [_in_chinese(out) for out in en.get("outputs", [])]
            zh["execution_count"] = en.get("execution_count")
    for key in ("widgets", "language_info"):  # widget state; the lexer (ipython3: ! lines)
        if key in english.get("metadata", {}):
            chinese["metadata"][key] = english["metadata"][key]
    return chinese


def _in_chinese(output: dict) -> dict:
    """An English notebook's output with the lines course_utils printed (data sources,
    ``Terminal equivalent: …``, errors) as a Chinese kernel prints them."""
    from course_utils.i18n import tr_output

    output = dict(output)
    if output.get("output_type") == "stream":
        text = output.get("text", "")
        text = "".join(text) if isinstance(text, list) else text
        output["text"] = tr_output(text, "zh")
    elif output.get("output_type") == "error":
        output["evalue"] = tr_output(output.get("evalue", ""), "zh")
    return output


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


def _chinese_around(app, pagename, templatename, context, doctree):
    """Chinese navigation, home link, site title and banner on a Chinese page (runs after the
    theme's own html-page-context handlers, which put these into ``context``)."""
    if not is_chinese(pagename) or "README.zh-CN" not in app.env.found_docs:
        return
    context["root_doc"] = "README.zh-CN"  # the home link and the logo
    context["root_title"] = app.env.titles["README.zh-CN"].astext()
    context["docstitle"] = ZH_TITLE
    if context.get("theme_announcement"):
        context["theme_announcement"] = chinese_banner(context["theme_announcement"])
    pages = [(app.builder.get_relative_uri(pagename, doc) or "#", app.env.titles[doc].astext(),
              doc == pagename) for doc in sorted(app.env.found_docs) if doc.startswith(ZH)]
    original = context.get("generate_toctree_html")

    def generate_toctree_html(kind, *args, **kwargs):
        if kind == "sidebar":
            return chinese_sidebar(pages)
        return original(kind, *args, **kwargs)

    if original is not None:
        context["generate_toctree_html"] = generate_toctree_html


def setup_zh(app) -> None:
    app.connect("source-read", _outputs_from_english)
    app.connect("html-page-context", _language_switch)
    app.connect("html-page-context", _chinese_around, priority=900)
