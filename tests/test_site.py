"""The course website (docs/conf.py: Sphinx + MyST-NB) built from the notebooks, opened in
headless Chromium from a server on 127.0.0.1.

One session fixture builds the site once, in fast mode and offline, into a temporary folder
(the executions are cached in ``.cache/site/fast``, so a second run only re-reads them).
Every chapter page shows its title, all the figures its executed notebook drew, no error
output, and a download link; the home page lists the chapters in file order; search works
without a network; a screenshot of a chapter page is saved. A tiny project with a broken
notebook shows that a failed build names the notebook and the cell, and that a rebuild after
a one-cell change re-executes only that notebook.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path
from typing import NamedTuple

import pytest
from _browser_kit import NOTEBOOKS, first_heading, start_chromium, wait

from course_utils.settings import REPO_ROOT

pytestmark = pytest.mark.browser


def _readme_build_command() -> list[str]:
    """The first code block of the README's ``## Course website``, split into arguments."""
    section = (REPO_ROOT / "README.md").read_text(encoding="utf-8").split(
        "\n## Course website\n", 1)[-1]
    block = re.search(r"```\w*\n(.*?)```", section, re.S)
    assert block, "README.md has no code block under '## Course website'"
    return shlex.split(block.group(1).strip().splitlines()[0])


BUILD = _readme_build_command()
# a code cell that calls one of these draws a picture
DRAWS = re.compile(r"\b(plt\.|show_images|show_image|show_prediction|plot_scalars|conv_picture"
                   r"|imshow|tb\.show)\b|\.plot\(")


def test_readme_command_builds_into_site():
    assert BUILD[:3] == ["python", "-m", "sphinx"] and BUILD[-1] == "site", BUILD


def _build(project: Path, out: Path, **env) -> subprocess.CompletedProcess:
    """Run the README's command in ``project`` with ``out`` as the output folder."""
    environ = {k: v for k, v in os.environ.items() if k != "COURSE_DATA_DIR"}
    environ = {**environ, "COURSE_FAST": "1", "COURSE_OFFLINE": "1", **env,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                           os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, *BUILD[1:-1], str(out)], cwd=project, env=environ,
                          capture_output=True, text=True, timeout=1500)


def _executed(source: str, name: str):
    """The executed notebook the site build cached for the notebook text ``source``."""
    import nbformat
    from jupyter_cache import get_cache

    cache = get_cache(REPO_ROOT / ".cache" / "site" / "fast")
    try:
        return cache.merge_match_into_notebook(nbformat.reads(source, as_version=4))[1]
    except KeyError:
        pytest.fail(f"{name} changed while the site was being built: run the tests again",
                    pytrace=False)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Site(NamedTuple):
    url: str  # base URL of the served site
    sources: dict[str, str]  # notebook file name -> its text when the build started


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """Build the site once; serve it on 127.0.0.1."""
    out = tmp_path_factory.mktemp("site")
    sources = {p.name: p.read_text(encoding="utf-8") for p in NOTEBOOKS}
    result = _build(REPO_ROOT, out)
    if result.returncode:
        pytest.fail(f"the site build failed:\n{result.stderr[-6000:]}", pytrace=False)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             partial(_Quiet, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Site(f"http://127.0.0.1:{server.server_address[1]}", sources)
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


def _resources_outside(browser, base: str) -> list[str]:
    names = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    return [n for n in names if not n.startswith(base) and not n.startswith("data:")]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_chapter_page_shows_title_figures_and_no_error(site, browser, notebook):
    from selenium.webdriver.common.by import By

    browser.get(f"{site.url}/notebooks/{notebook.stem}.html")
    executed = _executed(site.sources[notebook.name], notebook.name)
    title = first_heading(executed)
    heading = browser.find_element(By.CSS_SELECTOR, "article h1").text.replace("#", "").strip()
    assert " ".join(heading.split()) == title
    assert title in browser.title

    images = sum("image/png" in out.get("data", {}) for cell in executed.cells
                 for out in cell.get("outputs", []))
    if any(DRAWS.search(c.source) for c in executed.cells if c.cell_type == "code"):
        assert images >= 1, f"{notebook.name} calls a drawing function but drew nothing"
    loaded = ("return [...document.querySelectorAll('.cell_output img')]"
              ".filter(i => i.complete && i.naturalWidth > 0).length")
    wait(f"{images} drawn images to load", lambda: browser.execute_script(loaded) >= images,
         timeout=30)

    outputs = " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, ".cell_output"))
    assert "Traceback (most recent call last)" not in outputs
    assert not browser.find_elements(By.CSS_SELECTOR, ".cell_output .output.traceback")
    assert outputs.strip(), "no output rendered"
    download = browser.find_element(By.CSS_SELECTOR, f"a[href$='{notebook.stem}.ipynb']")
    assert download.get_attribute("href").startswith(site.url)
    assert not _resources_outside(browser, site.url), "the page loaded something from outside"
    # widgets (progress bars, sliders) are written out as text, not left for a CDN script
    assert not browser.find_elements(By.CSS_SELECTOR, "script[type*='jupyter.widget']")


def test_download_link_serves_the_notebook(site, browser):
    import urllib.request

    from selenium.webdriver.common.by import By

    browser.get(f"{site.url}/notebooks/{NOTEBOOKS[0].stem}.html")
    href = browser.find_element(By.CSS_SELECTOR, f"a[href$='{NOTEBOOKS[0].stem}.ipynb']")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(href.get_attribute("href"), timeout=10) as response:
        served = json.loads(response.read())
    assert served["cells"] == json.loads(site.sources[NOTEBOOKS[0].name])["cells"]


def test_home_page_is_the_readme_and_lists_every_chapter_in_order(site, browser):
    from selenium.webdriver.common.by import By

    browser.get(site.url + "/")  # index.html sends the browser on to README.html
    wait("the home page", lambda: browser.current_url.endswith("/README.html"), timeout=20)
    readme_title = (REPO_ROOT / "README.md").read_text(encoding="utf-8").splitlines()[0]
    assert browser.find_element(By.CSS_SELECTOR, "article h1").text.replace("#", "").strip() \
        == readme_title.lstrip("# ").strip()
    links = [(a.get_attribute("href"), a.get_attribute("textContent").strip())
             for a in browser.find_elements(By.CSS_SELECTOR, "nav.bd-links a.reference")]
    chapters = [(h, t) for h, t in links if "/notebooks/" in h]
    assert [h.rsplit("/", 1)[1] for h, _ in chapters] == [f"{p.stem}.html" for p in NOTEBOOKS]
    assert [t for _, t in chapters] == [first_heading(json.loads(site.sources[p.name]))
                                        for p in NOTEBOOKS]
    assert any(h.endswith("/docs/data_sources.html") for h, _ in links)
    assert "Built in fast mode" in browser.find_element(By.TAG_NAME, "body").text


def test_data_sources_page(site, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{site.url}/docs/data_sources.html")
    text = browser.find_element(By.TAG_NAME, "article").text
    for needed in ("Data sources and licences", "CIFAR-10", "hymenoptera_data",
                   "Provenance and licences", "cifar10_improved.pt", "MIT"):
        assert needed in text


def test_search_finds_a_chapter_offline(site, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{site.url}/search.html?q=DataLoader")
    found = wait("search results", lambda: [a.get_attribute("href") for a in
                                            browser.find_elements(By.CSS_SELECTOR,
                                                                  "#search-results li a")],
                 timeout=30)
    assert any("/notebooks/05_" in h for h in found), found
    assert not _resources_outside(browser, site.url)


def test_screenshot_of_a_chapter_page(site, browser, tmp_path_factory):
    from selenium.webdriver.common.by import By

    folder = Path(os.environ.get("COURSE_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    page = next((p for p in NOTEBOOKS if p.name.startswith("06_")), NOTEBOOKS[-1])
    browser.get(f"{site.url}/notebooks/{page.stem}.html")
    figure = browser.find_elements(By.CSS_SELECTOR, ".cell_output img")
    if figure:
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", figure[0])
    shot = folder / f"site_{page.stem}.png"
    assert browser.save_screenshot(str(shot))
    print(f"site screenshot: {shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


# ------------------------------------------------------------ the build on a tiny project
def _notebook(path: Path, title: str, *sources: str) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}")]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.slow
def test_build_caches_executions_and_names_the_failed_cell(tmp_path):
    project = tmp_path / "course"
    (project / "notebooks").mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "docs", project / "docs",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (project / "data").mkdir()
    shutil.copy(REPO_ROOT / "data" / "README.md", project / "data")  # the data sources page
    (project / "README.md").write_text("# Tiny course\n", encoding="utf-8")
    _notebook(project / "notebooks" / "01_ok.ipynb", "01 · OK — 好", "print(6 * 7)")
    _notebook(project / "notebooks" / "02_change.ipynb", "02 · Change", "x = 1", "print(x)")

    first = _build(project, project / "site", COURSE_REPO_URL="https://github.com/you/course")
    assert first.returncode == 0, first.stderr[-3000:]
    page = (project / "site" / "notebooks" / "01_ok.html").read_text(encoding="utf-8")
    assert "42" in re.sub(r"<[^>]*>", "", page)  # the output of print(6 * 7)
    assert ("https://colab.research.google.com/github/you/course/blob/main/notebooks/01_ok.ipynb"
            in page)
    assert (project / ".cache" / "site" / "fast").is_dir()

    _notebook(project / "notebooks" / "02_change.ipynb", "02 · Change", "x = 2", "print(x)")
    second = _build(project, project / "site2")  # a new site: every page is read again
    assert second.returncode == 0, second.stderr[-3000:]
    log = second.stdout + second.stderr
    assert re.search(r"01_ok\.ipynb: Using cached notebook", log), log[-3000:]
    assert re.search(r"02_change\.ipynb: Executed notebook", log), log[-3000:]
    assert not re.search(r"01_ok\.ipynb: Executed notebook", log)

    _notebook(project / "notebooks" / "02_change.ipynb", "02 · Change", "x = 2",
              "y = x / 0  # boom", "print(y)")
    broken = _build(project, project / "site")
    assert broken.returncode != 0
    message = broken.stderr
    assert "02_change.ipynb: cell 3 (code cell 2), which starts: y = x / 0  # boom" in message
    assert "ZeroDivisionError: division by zero" in message
    assert "01_ok.ipynb: cell" not in message


def test_a_missing_chromium_fails_under_ci_and_skips_elsewhere(monkeypatch, tmp_path):
    import _browser_kit

    monkeypatch.setattr(_browser_kit, "CHROMIUM", None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the browser tests, but no "
                                                    "Chromium here"):
        _browser_kit.start_chromium(tmp_path)
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="no Chromium here"):
        _browser_kit.start_chromium(tmp_path)
