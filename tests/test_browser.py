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
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import pytest
import torch
from _browser_kit import CHROMEDRIVER, CHROMIUM, in_ci, why_no_browser

from course_utils import _tb_server, checkpoints, data, engine, loaders, models, tb
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
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium through the system chromedriver (never downloads a driver)."""
    reason = why_no_browser()
    if reason and in_ci():  # CI installs Chromium: its absence is a failure there
        pytest.fail(f"CI must run the browser tests, but {reason}", pytrace=False)
    if reason:  # a warning shows in pytest's summary even without -rs
        warnings.warn(f"browser tests skipped: {reason}", stacklevel=1)
        pytest.skip(reason)
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must not go online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-extensions",
                "--window-size=1400,1000", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    assert not _processes_mentioning(str(profile)), "Chromium was left running"


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain ``text`` (via ``ps``)."""
    ps = subprocess.run(["ps", "-eo", "pid=,stat=,args="], capture_output=True, text=True,
                        check=True)
    return [line for line in ps.stdout.splitlines()
            if text in line and line.split()[1][:1] != "Z" and "ps -eo" not in line]


def _wait(what: str, predicate, timeout: float, interval: float = 0.25):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


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
                       start=found[1] if found else None)
    finally:
        torch.set_num_threads(threads)
    return logdir


def test_tensorboard_in_chromium_shows_the_course_scalars(browser, course_logs, tmp_path,
                                                         group_alive):
    from selenium.webdriver.common.by import By

    with tb.launch(course_logs) as board:
        assert board.url.startswith("http://127.0.0.1:")
        browser.get(board.url + "#scalars&tagFilter=loss%7Caccuracy")
        _wait("the scalar tags on the page",
              lambda: all(t in browser.find_element(By.TAG_NAME, "body").text for t in TAGS),
              timeout=60)
        _wait("three drawn curves",
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
def _free_port() -> int:
    return _tb_server.free_port("127.0.0.1")


class Lab:
    """``jupyter lab`` on 127.0.0.1 with a token, in its own process group and folders."""

    def __init__(self, root: Path, home: Path):
        self.port, self.token, self.home = _free_port(), secrets.token_hex(16), home
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "CI": "true", "COURSE_OFFLINE": "1",
               "COURSE_CACHE_DIR": str(home / "cache"),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                           os.environ.get("PYTHONPATH")])),
               "JUPYTER_CONFIG_DIR": str(home / "config"),
               "JUPYTER_DATA_DIR": str(home / "data"),
               "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
               "IPYTHONDIR": str(home / "ipython")}
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
               f"--port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
               f"--LabApp.workspaces_dir={home / 'workspaces'}", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log = (home / "server.log").open("wb")
        self.process = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                        stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def api(self, route: str, method: str = "GET", timeout: float = 5.0):
        request = urllib.request.Request(f"{self.base}/api/{route}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with _NO_PROXY.open(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def wait_ready(self, timeout: float = 60.0) -> None:
        def ready():
            if self.process.poll() is not None:
                raise AssertionError(f"jupyter lab exited:\n{self.output()}")
            try:
                return self.api("status", timeout=2) is not None
            except OSError:
                return False

        _wait(f"JupyterLab at {self.base}", ready, timeout)

    def output(self) -> str:
        self.log.flush()
        return (self.home / "server.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        """Shut down kernels and server through the API, then make sure of it."""
        if self.process.poll() is None:
            try:
                self.api("shutdown", method="POST")
                self.process.wait(20)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.log.close()


def _run_all_from_the_run_menu(browser) -> None:
    from selenium.webdriver.common.by import By

    run_menu = "//li[contains(@class,'lm-MenuBar-item')][normalize-space(.)='Run']"
    run_all = "//li[contains(@class,'lm-Menu-item')][.//div[normalize-space(.)='Run All Cells']]"

    def open_and_click():
        browser.find_element(By.XPATH, run_menu).click()
        items = [e for e in browser.find_elements(By.XPATH, run_all) if e.is_displayed()]
        if items and "lm-mod-disabled" not in (items[0].get_attribute("class") or ""):
            items[0].click()
            return True
        return False

    _wait("the Run menu's 'Run All Cells'", open_and_click, timeout=30, interval=0.5)


def test_jupyterlab_runs_a_chapter_notebook_and_leaves_nothing(browser, tmp_path, group_alive):
    from selenium.webdriver.common.by import By

    chapter = sorted((REPO_ROOT / "notebooks").glob("01_*.ipynb"))
    assert chapter, "chapter 1's notebook is missing"
    root = tmp_path / "course"
    root.mkdir()
    shutil.copy(chapter[0], root / chapter[0].name)
    lab = Lab(root, tmp_path)
    try:
        lab.wait_ready()
        if Path("/proc/net/tcp").exists():
            assert _listening_on(lab.port) == {"127.0.0.1"}  # loopback only
        browser.get(f"{lab.base}/lab/tree/{chapter[0].name}?token={lab.token}")
        n_code = sum(1 for _ in _code_cells(chapter[0]))
        _wait("the notebook's cells", lambda: len(browser.find_elements(
            By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell")) == n_code, timeout=60)
        _wait("the kernel, idle, in the status bar", lambda: browser.find_elements(
            By.XPATH, "//*[contains(@class,'jp-StatusBar-TextItem')][contains(., 'ipykernel')]"
                      "[contains(., 'Idle')]"), timeout=60)
        _run_all_from_the_run_menu(browser)

        def all_cells_ran():
            prompts = [e.text.strip() for e in browser.find_elements(
                By.CSS_SELECTOR, ".jp-CodeCell .jp-InputArea-prompt")]
            return prompts and all(p[1:-2].isdigit() for p in prompts) and prompts

        try:
            prompts = _wait("every code cell to run", all_cells_ran, timeout=90)
        except AssertionError:
            shot = tmp_path / "jupyterlab-timeout.png"
            browser.save_screenshot(str(shot))
            prompts = [e.text for e in browser.find_elements(
                By.CSS_SELECTOR, ".jp-CodeCell .jp-InputArea-prompt")]
            raise AssertionError(f"not every cell ran: prompts {prompts}; screenshot {shot}; "
                                 f"server log:\n{lab.output()}") from None
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
        _wait("the kernel to exit", lambda: not _processes_mentioning(runtime), timeout=10)
    except AssertionError:
        raise AssertionError(f"left running: {_processes_mentioning(runtime)}") from None


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
