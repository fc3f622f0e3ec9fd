"""Sphinx configuration of the course website (Sphinx + MyST-NB + sphinx-book-theme).

Build (from the repository root; the README's ``## Course website`` says the same)::

    python -m sphinx -b html -c docs . site

The source folder is the repository root, so the README is the home page and every
``notebooks/NN_*.ipynb`` is a page, found by a glob (no list to keep up to date) and titled by
the notebook's first heading. MyST-NB executes each notebook in ``notebooks/`` (its working
folder, as for a learner) and keeps the executed copy in a jupyter-cache database under
``.cache/site/<mode>/``: a rebuild re-runs only notebooks whose code changed. ``<mode>`` is
``fast`` when ``CI``/``COURSE_FAST`` is set (the notebooks then shrink epochs and data; every
page says so in a banner, and such a build is never published), ``full`` for a learner's run on
the full CIFAR-10 and ``sample`` for one offline on the bundled sample, plus ``-<folder>`` when
``COURSE_DATA_DIR`` names a data folder, so outputs of one kind of run are never shown as
another's. ``site/build-mode.txt`` records it; ``.github/workflows/site.yml`` publishes only
``full``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs"))

from site_hooks import setup_hooks  # noqa: E402
from site_zh import setup_zh  # noqa: E402

from course_utils.cifar_batches import full_cifar10_available  # noqa: E402
from course_utils.settings import data_dir, fast_mode  # noqa: E402

project = "PyTorch quick start, hands on — 小土堆 PyTorch 深度学习快速入门教程"
author = "the course authors"
copyright = "the course authors; data see Data sources and licences"
language = "en"

extensions = ["myst_nb", "sphinx-mathjax-offline"]  # MathJax served from _static: offline
root_doc = "README"
# What becomes a page; everything else in the repository is ignored.
include_patterns = ["README.md", "notebooks/[0-9]*.ipynb", "docs/*.md",
                    "README.zh-CN.md", "notebooks/zh/[0-9]*.ipynb"]  # 中文版: docs/site_zh.py
exclude_patterns = ["**/.ipynb_checkpoints"]
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
smartquotes = False  # keep quotes as typed: titles and code names stay searchable
suppress_warnings = ["myst.xref_missing", "myst.header"]  # README links to .py files / folders

# ------------------------------------------------------------------- notebook execution
# Sphinx reads this file inside docs/, and the notebooks run in notebooks/: a relative
# COURSE_DATA_DIR means the folder as seen from the repository root, where the build runs.
if (_named := os.environ.get("COURSE_DATA_DIR", "").strip()) and \
        not Path(_named).expanduser().is_absolute():
    os.environ["COURSE_DATA_DIR"] = str(ROOT / _named)
DATA = data_dir()  # COURSE_DATA_DIR (validated), or None
# fast: CI's quick check (never published); full: a learner's run on the full CIFAR-10 (what
# .github/workflows/site.yml publishes); sample: a learner's run offline, on the bundled sample
KIND = "fast" if fast_mode() else "full" if full_cifar10_available() else "sample"
MODE = KIND + (f"-{DATA.name}" if DATA else "")
nb_execution_mode = "cache"
nb_execution_cache_path = str(ROOT / ".cache" / "site" / MODE)
nb_execution_timeout = 600 if fast_mode() else -1  # seconds per cell; full trainings are long
nb_execution_raise_on_error = False  # site_hooks stops the build naming every failed cell
nb_execution_show_tb = False
nb_execution_in_temp = False  # run in notebooks/, where a learner runs them
# the Chinese pages show their English notebook's outputs (same code): not executed again
nb_execution_excludepatterns = ["notebooks/zh/*.ipynb"]
nb_merge_streams = True
# Widgets (progress bars, explorers) need a widget manager from a CDN to show live: site_hooks
# writes them as text from their saved state instead, and no page loads anything from outside.
nb_ipywidgets_js = {}

# ------------------------------------------------------------------------------ theme
html_theme = "sphinx_book_theme"
html_title = "PyTorch quick start — 小土堆 PyTorch 快速入门"
html_last_updated_fmt = ""
REPO_URL = os.environ.get("COURSE_REPO_URL", "").rstrip("/")  # e.g. a GitHub URL
html_theme_options = {
    "use_download_button": True,  # every page: download the .ipynb (or .md)
    "use_fullscreen_button": False,
    "show_toc_level": 2,
    "home_page_in_toc": True,
}
if REPO_URL:  # Colab and repository buttons need to know where the notebooks live
    html_theme_options.update({
        "repository_url": REPO_URL,
        "repository_branch": os.environ.get("COURSE_REPO_BRANCH", "main"),
        "path_to_docs": "",
        "use_repository_button": True,
        "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    })
if KIND == "fast":  # say so on every page: these outputs come from shrunk runs
    html_theme_options["announcement"] = (
        "Built in fast mode (CI/COURSE_FAST), for testing only: every run is shrunk to a quick "
        "check, so the numbers are not the course's results. A fast-mode build is never "
        "published.")
elif KIND == "sample":
    html_theme_options["announcement"] = (
        "Built offline on the bundled CIFAR-10 sample (1,000 training images): trainings "
        "reach far less than on the full data set.")
elif DATA:
    html_theme_options["announcement"] = f"Outputs computed on the data in {DATA}."


def _outputs_into_the_cache(app):
    # MyST-NB writes executed copies and their images to <site>/../jupyter_execute, i.e. the
    # repository root; keep them beside the execution cache instead (after MyST-NB's own
    # builder-inited handler, which sets the default).
    app.env.mystnb_config = app.env.mystnb_config.copy(
        output_folder=str(ROOT / ".cache" / "site" / f"{MODE}-outputs"))


def _write_build_mode(app, exc):
    # site/build-mode.txt: what kind of run the pages show; the publishing workflow
    # (.github/workflows/site.yml) refuses anything but "full"
    if exc is None and app.builder.format == "html":
        (Path(app.outdir) / "build-mode.txt").write_text(MODE + "\n", encoding="utf-8")


def setup(app):
    setup_hooks(app)
    app.connect("build-finished", _write_build_mode)
    setup_zh(app)
    app.connect("builder-inited", _outputs_into_the_cache, priority=900)
