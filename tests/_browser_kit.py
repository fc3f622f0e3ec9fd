"""Headless Chromium and a token-less JupyterLab for tests/test_site.py and
tests/test_jupyterlab.py (plain helpers; the fixtures live in those files).

Where Chromium, chromedriver or selenium is missing the browser tests skip with the reason,
except under CI (``CI`` set), where they fail: CI installs them, so their absence is a bug.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from course_utils.settings import REPO_ROOT

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                "google-chrome"))), None)
CHROMEDRIVER = shutil.which("chromedriver") or next(
    (p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
     if os.access(p, os.X_OK)), None)
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-extensions",
                  "--window-size=1400,1000")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9]*.ipynb"))


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


def why_no_browser() -> str | None:
    if CHROMIUM is None:
        return "no Chromium here (apt-get install chromium chromium-driver)"
    if CHROMEDRIVER is None:
        return "no chromedriver here (apt-get install chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


def start_chromium(profile: Path):
    """A headless Chromium with a fresh profile folder, through the system chromedriver;
    fails (CI) or skips (elsewhere) when there is none."""
    reason = why_no_browser()
    if reason:
        if in_ci():
            pytest.fail(f"CI must run the browser tests, but {reason}", pytrace=False)
        pytest.skip(reason)
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must not go online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


def wait(what: str, predicate, timeout: float, interval: float = 0.25):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running (not zombie) processes that contain ``text``."""
    ps = subprocess.run(["ps", "-eo", "pid=,stat=,args="], capture_output=True, text=True,
                        check=True)
    return [line for line in ps.stdout.splitlines()
            if text in line and line.split()[1][:1] != "Z" and "ps -eo" not in line]


def first_heading(notebook: Path | dict) -> str:
    """The text of a notebook's (file or loaded JSON) first markdown heading, markdown marks
    removed."""
    if not isinstance(notebook, dict):
        notebook = json.loads(notebook.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for line in source.splitlines():
            if cell["cell_type"] == "markdown" and line.startswith("#"):
                return " ".join(line.lstrip("#").replace("`", "").replace("*", "").split())
    raise AssertionError("a notebook without a markdown heading")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """``jupyter lab`` on 127.0.0.1 without a token, with ``root`` as its root folder and all
    its state in ``home``; its own process group. ``fast=False`` starts the kernels without
    ``CI``/``COURSE_FAST`` (as on a learner's machine)."""

    def __init__(self, root: Path, home: Path, fast: bool = True):
        self.port, self.home = free_port(), home
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items()
               if k not in ("CI", "COURSE_FAST", "COURSE_DATA_DIR")}
        env.update({"COURSE_OFFLINE": "1", "COURSE_CACHE_DIR": str(home / "cache"),
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                                env.get("PYTHONPATH")])),
                    "JUPYTER_CONFIG_DIR": str(home / "config"),
                    "JUPYTER_DATA_DIR": str(home / "data"),
                    "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
                    "IPYTHONDIR": str(home / "ipython"), "MPLBACKEND": "module://"
                    "matplotlib_inline.backend_inline"})
        if fast:
            env["COURSE_FAST"] = "1"
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
               f"--port={self.port}", "--ServerApp.port_retries=0",
               "--IdentityProvider.token=", "--ServerApp.password=",
               "--ServerApp.disable_check_xsrf=True",  # the tests' API calls have no cookie
               f"--ServerApp.root_dir={root}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
               "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log = (home / "server.log").open("wb")
        self.process = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                        stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def api(self, route: str, method: str = "GET", timeout: float = 5.0):
        request = urllib.request.Request(f"{self.base}/api/{route}", method=method)
        with NO_PROXY.open(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def wait_ready(self, timeout: float = 90.0) -> None:
        def ready():
            if self.process.poll() is not None:
                raise AssertionError(f"jupyter lab exited:\n{self.output()}")
            try:
                return self.api("status", timeout=2) is not None
            except OSError:
                return False

        wait(f"JupyterLab at {self.base}", ready, timeout)

    def output(self) -> str:
        self.log.flush()
        return (self.home / "server.log").read_text(errors="replace")[-3000:]

    def shutdown_kernels(self) -> None:
        for kernel in self.api("kernels"):
            self.api(f"kernels/{kernel['id']}", method="DELETE", timeout=20)

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


def open_notebook(browser, lab: Lab, name: str, n_code: int) -> None:
    """Open ``name`` (relative to the lab's root) alone in a fresh workspace; wait for its
    cells and an idle kernel."""
    from selenium.webdriver.common.by import By

    browser.get(f"{lab.base}/lab/tree/{name}?reset")
    wait("the notebook's cells", lambda: len(browser.find_elements(
        By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell")) == n_code, timeout=90)
    wait("the kernel, idle, in the status bar", lambda: browser.find_elements(
        By.XPATH, "//*[contains(@class,'jp-StatusBar-TextItem')][contains(., 'Python')]"
                  "[contains(., 'Idle')]"), timeout=90)


def run_all(browser, timeout: float) -> list[str]:
    """Run > Run All Cells from the menu bar; wait until no cell is queued or running and the
    kernel is idle; return the cells' prompts (``[3]:``, or ``[ ]:`` for a skipped cell)."""
    from selenium.webdriver.common.by import By

    run_menu = "//li[contains(@class,'lm-MenuBar-item')][normalize-space(.)='Run']"
    run_all_item = ("//li[contains(@class,'lm-Menu-item')]"
                    "[.//div[normalize-space(.)='Run All Cells']]")

    def open_and_click():
        browser.find_element(By.XPATH, run_menu).click()
        items = [e for e in browser.find_elements(By.XPATH, run_all_item) if e.is_displayed()]
        if items and "lm-mod-disabled" not in (items[0].get_attribute("class") or ""):
            items[0].click()
            return True
        return False

    wait("the Run menu's 'Run All Cells'", open_and_click, timeout=30, interval=0.5)

    def prompts():
        return [e.text.strip() for e in browser.find_elements(
            By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt")]

    wait("the first cell to start", lambda: any(p != "[ ]:" for p in prompts()), timeout=30)

    def finished():
        now = prompts()
        idle = browser.find_elements(By.XPATH, "//*[contains(@class,'jp-StatusBar-TextItem')]"
                                               "[contains(., 'Idle')]")
        return idle and not any("*" in p for p in now) and now

    return wait("Run All to finish", finished, timeout=timeout, interval=0.5)
