"""Sphinx hooks of the course website (loaded by docs/conf.py).

* the home page (the README) gets a hidden table of contents: every notebook in
  ``notebooks/`` in file order, then the pages in ``docs/``;
* ``site/index.html`` sends the browser to the home page ``README.html``;
* a notebook cell that fails stops the build with a message naming the notebook and the cell
  (number, first line, error);
* ipywidgets outputs (progress bars, the explorers' sliders) are written as text from their
  saved state: showing them live would need a widget manager from a CDN, and the site works
  offline.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from docutils import nodes
from sphinx.errors import SphinxError

TOCTREE = """

```{toctree}
:hidden:
:glob:
:caption: Chapters

notebooks/*
```

```{toctree}
:hidden:
:glob:
:caption: About

docs/*
```
"""
REDIRECT = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Redirecting…</title>
<meta http-equiv="refresh" content="0; url=README.html"></head>
<body><a href="README.html">The course home page</a></body></html>
"""


def _add_toctree(app, docname, source):
    if docname == app.config.root_doc:
        source[0] += TOCTREE


def _write_redirect(app, exc):
    if exc is None and app.builder.format == "html":
        (Path(app.outdir) / "index.html").write_text(REDIRECT, encoding="utf-8")


class NotebookFailed(SphinxError):
    category = "Notebook execution failed"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FAILED_CELL = re.compile(r"executing the following cell:\n-+\n(.*?)\n-+\n", re.S)


def describe_failure(notebook: Path, traceback: str) -> str:
    """One paragraph naming the failed cell of ``notebook`` from nbclient's traceback text:
    its number among all cells and among code cells, its first line and the error."""
    text = _ANSI.sub("", traceback or "")
    found = _FAILED_CELL.search(text)
    source = found.group(1) if found else None
    where = "a cell (not identified)"
    if source is not None:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        code = [i for i, c in enumerate(cells) if c["cell_type"] == "code"]
        for k, i in enumerate(code, 1):
            cell_source = cells[i]["source"]
            if isinstance(cell_source, list):
                cell_source = "".join(cell_source)
            if cell_source == source:
                first = source.strip().splitlines()[0] if source.strip() else ""
                where = f"cell {i + 1} (code cell {k}), which starts: {first}"
                break
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    error = lines[-1] if lines else "unknown error"
    return f"{notebook}: {where}\n    -> {error}"


def _check_executions(app, env):
    from myst_nb.sphinx_ import NbMetadataCollector

    failures = []
    for docname in sorted(env.found_docs):
        data = NbMetadataCollector.get_exec_data(env, docname) or {}
        if data and not data.get("succeeded", True):
            failures.append(describe_failure(Path(env.doc2path(docname)), data.get("traceback")))
    if failures:
        raise NotebookFailed("\n".join(failures) + "\nRun that notebook top to bottom in "
                             "JupyterLab (or `pytest --nbmake FILE`) to see the whole error.")


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def widget_text(state: dict, model_id: str) -> str:
    """A plain-text picture of widget ``model_id`` from a notebook's saved widget state:
    boxes join their children, text widgets give their text, progress bars a bar, other
    controls ``description = value``."""
    model = state.get(model_id, {})
    name, values = model.get("model_name", ""), model.get("state", {})
    kids = [widget_text(state, c.removeprefix("IPY_MODEL_")) for c in values.get("children", [])]
    if name == "HBoxModel":
        return " ".join(k for k in kids if k)
    if kids:
        return "\n".join(k for k in kids if k)
    if name in ("HTMLModel", "HTMLMathModel", "LabelModel"):
        return html.unescape(re.sub(r"<[^>]*>", "", values.get("value", ""))).strip()
    if "Progress" in name:
        low, high = values.get("min", 0), values.get("max", 1)
        filled = round(10 * (values.get("value", 0) - low) / ((high - low) or 1))
        return "|" + "█" * filled + " " * (10 - filled) + "|"
    if "description" in values and "value" in values:
        return f"{values['description']} = {values['value']}"
    return ""


def _model_names(state: dict, model_id: str):
    model = state.get(model_id, {})
    yield model.get("model_name", "")
    for child in model.get("state", {}).get("children", []):
        yield from _model_names(state, child.removeprefix("IPY_MODEL_"))


def _static_widgets(app, doctree):
    from myst_nb.sphinx_ import NbMetadataCollector

    files = NbMetadataCollector.get_js_files(app.env, app.env.docname)
    saved = files.pop("ipywidgets_state", None)
    for key in [k for k in files if k.startswith("ipywidgets_")]:
        del files[key]  # require.js and the widget manager from a CDN: not on this site
    state = json.loads(saved[1]["body"])["state"] if saved else {}
    for node in list(doctree.findall(nodes.raw)):
        found = re.search(r">(.*)</script>", node.astext(), re.S)
        if WIDGET_VIEW not in node.astext() or not found:
            continue
        view = json.loads(found.group(1).replace("<\\/", "</"))
        model_id = (json.loads(view) if isinstance(view, str) else view)["model_id"]
        text = widget_text(state, model_id) or "(an interactive widget)"
        if any("Slider" in name for name in _model_names(state, model_id)):
            text += "\n(interactive when the notebook runs in JupyterLab)"
        node.replace_self(nodes.literal_block(text, text, classes=["output", "text_plain"]))


def setup_hooks(app) -> None:
    app.connect("doctree-read", _static_widgets)
    app.connect("source-read", _add_toctree)
    app.connect("env-updated", _check_executions)
    app.connect("build-finished", _write_redirect)
