"""A real browser (headless Chromium driven by Selenium) on the course's real servers:

* TensorBoard on the logs of a real (resumed) training run shows the course's scalar tags
  and draws their curves; a screenshot is saved.
* JupyterLab on 127.0.0.1 opens a chapter notebook, runs all cells from the Run menu, and
  renders their output; afterwards no server or kernel process is left.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); under CI
(``CI`` set) their absence fails these tests, elsewhere they skip and say why (``pytest -rs``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from _browser_kit import Lab, open_notebook, processes_mentioning, run_all, start_chromium, wait

from course_utils import checkpoints, data, engine, loaders, models, tb
from course_utils.settings import REPO_ROOT

pytestmark = pytest.mark.browser

TAGS = ("train_loss", "test_loss", "test_accuracy")
# every <path> inside the page, shadow DOMs included (TensorBoard's charts live in them)
DEEP_PATH_CLASSES = """
const found = [];
function walk(root) {
  for (const el of root.querySelectorAll('*')) {
    if (el.shadowRoot) walk(el.shadowRoot);
    if (el.tagName.toLowerCase() === 'path') found.push(el.getAttribute('class') || '');
  }
}
walk(document);
return found;
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium through the system chromedriver (never downloads a driver)."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    driver = start_chromium(profile)
    yield driver
    driver.quit()
    assert not processes_mentioning(str(profile)), "Chromium was left running"


# ------------------------------------------------------------------------ TensorBoard
@pytest.fixture(scope="module")
def course_logs(tmp_path_factory):
    """Logs of a real run on the bundled sample: 2 epochs, then resumed for a third."""
    logdir = tmp_path_factory.mktemp("logs")
    xs, ys = data.as_tensors(data.cifar10(train=True, verbose=False))
    keep = data.spread_indices(len(ys), 120)
    test = loaders.TensorLoader(*data.as_tensors(data.cifar10(train=False, verbose=False)),
                                batch_size=100)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: one thread is as fast, and far faster on a busy box
    try:
        for epochs, resume in ((2, False), (3, True)):
            torch.manual_seed(0)
            train = loaders.TensorLoader(xs[keep], ys[keep], batch_size=20, shuffle=True)
            model = models.Tudui()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
            found = checkpoints.load_latest(logdir / "tudui", verbose=False) if resume else None
            engine.fit(model, train, test, epochs=epochs, optimizer=optimizer,
                       loss_fn=torch.nn.CrossEntropyLoss(), device="cpu", progress=False,
                       log_every=2, run_dir=logdir / "tudui", model_name="tudui",
                       checkpoint=found[1] if found else None)
    finally:
        torch.set_num_threads(threads)
    return logdir


def test_tensorboard_in_chromium_shows_the_course_scalars(browser, course_logs, tmp_path,
                                                         group_alive):
    from selenium.webdriver.common.by import By

    with tb.launch(course_logs) as board:
        assert board.url.startswith("http://127.0.0.1:")
        browser.get(board.url + "#scalars&tagFilter=loss%7Caccuracy")
        wait("the scalar tags on the page",
              lambda: all(t in browser.find_element(By.TAG_NAME, "body").text for t in TAGS),
              timeout=60)
        wait("three drawn curves",
              lambda: sum("line" in c.split() for c in browser.execute_script(DEEP_PATH_CLASSES))
              >= len(TAGS), timeout=30)
        shot = tmp_path / "tensorboard_scalars.png"
        assert browser.save_screenshot(str(shot))
        print(f"TensorBoard screenshot: {shot}")
        served = board.scalars("tudui", "train_loss")
        pid = board.process.pid
    steps = [s for s, _ in served]
    assert steps == list(range(2, 19, 2))  # 6 steps an epoch, one curve over 3 epochs
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    assert not board.running and not group_alive(pid), "TensorBoard was left running"


# ------------------------------------------------------------------------- JupyterLab
def test_jupyterlab_runs_a_chapter_notebook_and_leaves_nothing(browser, tmp_path, group_alive):
    from selenium.webdriver.common.by import By

    chapter = sorted((REPO_ROOT / "notebooks").glob("01_*.ipynb"))
    assert chapter, "chapter 1's notebook is missing"
    root = tmp_path / "course"
    root.mkdir()
    shutil.copy(chapter[0], root / chapter[0].name)
    lab = Lab(root, tmp_path, fast=True)
    try:
        lab.wait_ready()
        if Path("/proc/net/tcp").exists():
            assert _listening_on(lab.port) == {"127.0.0.1"}  # loopback only
        n_code = sum(1 for _ in _code_cells(chapter[0]))
        open_notebook(browser, lab, chapter[0].name, n_code)
        try:
            prompts = run_all(browser, lab, chapter[0].name, timeout=90)
        except AssertionError:
            shot = tmp_path / "jupyterlab-timeout.png"
            browser.save_screenshot(str(shot))
            raise AssertionError(f"not every cell ran; screenshot {shot}; server log:\n"
                                 f"{lab.output()}") from None
        assert all(p[1:-2].isdigit() for p in prompts), f"a cell did not run: {prompts}"
        outputs = [e.text for e in browser.find_elements(By.CSS_SELECTOR,
                                                         ".jp-OutputArea-output")]
        shot = tmp_path / "jupyterlab.png"
        browser.save_screenshot(str(shot))
        print(f"JupyterLab screenshot: {shot}")
        assert len(prompts) == n_code
        assert "fast mode (CI): True" in outputs  # the setup cell, rendered
        assert not [o for o in outputs if "Traceback" in o], "a cell raised"
        kernels = lab.api("kernels")
        assert len(kernels) == 1 and kernels[0]["execution_state"] == "idle"
    finally:
        lab.stop()
    assert lab.process.returncode is not None and not group_alive(lab.process.pid)
    runtime = str(tmp_path / "runtime")
    try:  # the kernel's command line names its connection file in the runtime folder
        wait("the kernel to exit", lambda: not processes_mentioning(runtime), timeout=10)
    except AssertionError:
        raise AssertionError(f"left running: {processes_mentioning(runtime)}") from None


def _listening_on(port: int) -> set[str]:
    """IPv4/IPv6 addresses listening on ``port``, from /proc/net/tcp{,6} (Linux)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                raw = bytes.fromhex(addr)
                if len(raw) == 4:
                    found.add(".".join(str(b) for b in raw[::-1]))
                else:
                    found.add(raw.hex())
    return found


def _code_cells(path: Path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return (c for c in notebook["cells"] if c["cell_type"] == "code")
