"""What a learner sees in JupyterLab, driven in headless Chromium (token-less JupyterLab on
127.0.0.1, serving a temporary copy of notebooks/):

* chapter 3 run with Run All shows TensorBoard inline: an iframe in the notebook's output
  whose page lists the chapter's scalar tags (kernel without CI/COURSE_FAST, as on a
  learner's machine; the data are the bundled samples);
* chapter 6's conv-arithmetic explorer redraws its picture when a slider is moved;
* every chapter notebook runs through Run All without an error cell (slow; fast mode).

Afterwards no server, kernel or TensorBoard process is left.
"""

from __future__ import annotations

import json
import shutil
import time

import pytest
from _browser_kit import (
    NOTEBOOKS,
    Lab,
    open_notebook,
    processes_mentioning,
    run_all,
    run_command,
    start_chromium,
    wait,
)

pytestmark = pytest.mark.browser


def _chapter(prefix: str):
    found = [p for p in NOTEBOOKS if p.name.startswith(prefix)]
    assert found, f"no notebook notebooks/{prefix}*.ipynb"
    return found[0]


def _n_code(path) -> int:
    return sum(c["cell_type"] == "code"
               for c in json.loads(path.read_text(encoding="utf-8"))["cells"])


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


def _start_lab(tmp_path_factory, fast: bool):
    root = tmp_path_factory.mktemp("course")
    (root / "notebooks").mkdir()
    for notebook in NOTEBOOKS:  # the notebooks only, not what earlier runs left beside them
        shutil.copy(notebook, root / "notebooks")
    lab = Lab(root, tmp_path_factory.mktemp("lab-home"), fast=fast)
    try:
        lab.wait_ready()
    except BaseException:
        lab.stop()
        raise
    return root, lab


def _stop_and_check(lab: Lab, root) -> None:
    lab.stop()
    assert lab.process.returncode is not None
    wait("every kernel and TensorBoard of the lab to exit",
         lambda: not processes_mentioning(str(lab.home)) and not processes_mentioning(str(root)),
         timeout=20)


@pytest.fixture(scope="module")
def fast_lab(tmp_path_factory):
    """One JupyterLab (kernels in fast mode) for the tests below that need it."""
    root, lab = _start_lab(tmp_path_factory, fast=True)
    yield lab
    _stop_and_check(lab, root)


def _error_outputs(lab: Lab, name: str) -> list[str]:
    """``ename: evalue`` of every error output in the notebook as JupyterLab saved it."""
    cells = lab.api(f"contents/notebooks/{name}")["content"]["cells"]
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in cells if c["cell_type"] == "code"
            for o in c.get("outputs", []) if o["output_type"] == "error"]


def _save(browser, lab: Lab, name: str) -> None:
    """Save the notebook (the command behind File > Save); wait until the file on disk has
    changed."""
    route = f"contents/notebooks/{name}?content=0"
    before = lab.api(route)["last_modified"]
    run_command(browser, "docmanager:save")
    wait(f"{name} to be saved", lambda: lab.api(route)["last_modified"] != before, timeout=30)


def test_tensorboard_shows_inline_in_chapter_3(browser, tmp_path_factory):
    from selenium.webdriver.common.by import By

    chapter = _chapter("03_")
    root, lab = _start_lab(tmp_path_factory, fast=False)
    try:
        name = f"notebooks/{chapter.name}"
        open_notebook(browser, lab, name, _n_code(chapter))
        prompts = run_all(browser, lab, name, timeout=240)
        assert all(p[1:-2].isdigit() for p in prompts), prompts
        frames = wait("TensorBoard's iframe in an output", lambda: browser.find_elements(
            By.CSS_SELECTOR, ".jp-OutputArea-output iframe"), timeout=30)
        src = frames[0].get_attribute("src")
        assert src.startswith("http://127.0.0.1:"), src
        browser.switch_to.frame(frames[0])
        try:
            text = wait("the scalar tags inside the frame", lambda: (
                lambda t: all(tag in t for tag in ("y=x", "y=2x")) and t)(
                browser.find_element(By.TAG_NAME, "body").text), timeout=90)
            assert "SCALARS" in text.upper()
        finally:
            browser.switch_to.default_content()
        shot = tmp_path_factory.mktemp("artifacts") / "jupyterlab_tensorboard_inline.png"
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", frames[0])
        assert browser.save_screenshot(str(shot))
        print(f"JupyterLab screenshot: {shot}")
    finally:
        _stop_and_check(lab, root)


def test_conv_explorer_redraws_when_a_slider_moves(browser, fast_lab):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    chapter = _chapter("06_")
    try:
        name = f"notebooks/{chapter.name}"
        open_notebook(browser, fast_lab, name, _n_code(chapter))
        run_all(browser, fast_lab, name, timeout=240)
        box = wait("the explorer's sliders", lambda: [
            b for b in browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output .widget-vbox")
            if len(b.find_elements(By.CSS_SELECTOR, ".widget-slider")) >= 5], timeout=60)[0]
        sliders = {s.find_element(By.CSS_SELECTOR, ".widget-label").text.strip(): s
                   for s in box.find_elements(By.CSS_SELECTOR, ".widget-slider")}
        padding = sliders["padding"]
        readout = padding.find_element(By.CSS_SELECTOR, ".widget-readout")
        before_value = readout.text.strip()

        def picture():  # the explorer clears and refills its output: elements go stale
            try:
                images = box.find_elements(By.CSS_SELECTOR, "img")
                return images[0].get_attribute("src") if images else None
            except StaleElementReferenceException:
                return None

        before = wait("the explorer's first picture", picture, timeout=60)
        handle = padding.find_element(By.CSS_SELECTOR, ".noUi-handle")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", handle)
        handle.click()
        handle.send_keys(Keys.ARROW_RIGHT)
        wait("the padding readout to change", lambda: readout.text.strip() != before_value,
             timeout=20)
        assert int(readout.text) == int(before_value) + 1
        after = wait("a new picture", lambda: (lambda p: p and p != before and p)(picture()),
                     timeout=60)
        assert after.startswith("data:image/png") or after.startswith("blob:")
        time.sleep(1)  # an error would be printed into the explorer's output area
        assert "Error" not in box.text
    finally:
        fast_lab.shutdown_kernels()


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_chapter_runs_all_without_an_error_cell(browser, fast_lab, notebook):
    from selenium.webdriver.common.by import By

    n_code = _n_code(notebook)
    try:
        name = f"notebooks/{notebook.name}"
        open_notebook(browser, fast_lab, name, n_code)
        prompts = run_all(browser, fast_lab, name, timeout=300)
        _save(browser, fast_lab, notebook.name)
        errors = _error_outputs(fast_lab, notebook.name)
        assert not errors, f"{notebook.name} raised in JupyterLab: {errors}"
        assert all(p[1:-2].isdigit() for p in prompts), f"cells not run: {prompts}"
        shown = " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR,
                                                                 ".jp-OutputArea-output"))
        assert "Traceback (most recent call last)" not in shown
    finally:
        fast_lab.shutdown_kernels()
