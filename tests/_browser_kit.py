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
        # every cell in the page, not only those in view (JupyterLab 4 windows long notebooks)
        settings = home / "config" / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
               f"--port={self.port}", "--ServerApp.port_retries=0",
               "--IdentityProvider.token=", "--ServerApp.password=",
               "--ServerApp.disable_check_xsrf=True",  # the tests' API calls have no cookie
               f"--ServerApp.root_dir={root}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
               "--LabApp.news_url=None",
               # window.jupyterapp: the tests read the notebook's model and run commands
               # through it, not through what happens to be drawn
               "--LabApp.expose_app_in_browser=True",
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

    def alive(self) -> None:
        """Fail at once, with the server log's tail, when the server has exited."""
        if self.process.poll() is not None:
            raise AssertionError(f"jupyter lab exited ({self.process.returncode}):\n"
                                 f"{self.output()}")

    def kernel_state(self, path: str) -> str | None:
        """The execution state the server reports (REST ``/api/sessions``) for the kernel of
        the notebook at ``path``: "starting", "idle", "busy", … or None without a session."""
        self.alive()
        for session in self.api("sessions"):
            if session.get("path") == path and session.get("kernel"):
                return session["kernel"].get("execution_state")
        return None

    def wait_ready(self, timeout: float = 90.0) -> None:
        def ready():
            if self.process.poll() is not None:
                raise AssertionError(f"jupyter lab exited:\n{self.output()}")
            try:
                return self.api("status", timeout=2) is not None
            except OSError:
                return False

        try:
            wait(f"JupyterLab at {self.base}", ready, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the server's log ends:\n{self.output()}") from None

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


# The notebook as JupyterLab holds it (window.jupyterapp, exposed by Lab): its path and, per
# code cell, the execution count (null while queued or running) and whether it shows an error.
_NOTEBOOK_MODEL_JS = """
const app = window.jupyterapp;
const panel = app && app.shell.currentWidget;
if (!panel || !panel.context || !panel.content || !panel.content.model) return null;
const cells = panel.content.model.cells, code = [];
for (let i = 0; i < cells.length; i++) {
  const cell = cells.get(i);
  if (cell.type !== 'code') continue;
  let error = false;
  for (let j = 0; j < cell.outputs.length; j++) error ||= cell.outputs.get(j).type === 'error';
  code.push({count: cell.executionCount, error: error});
}
return {path: panel.context.path, ready: panel.context.isReady, code: code};
"""


def notebook_model(browser) -> dict | None:
    """``{"path", "ready", "code": [{"count", "error"}, …]}`` of the notebook in front."""
    return browser.execute_script(_NOTEBOOK_MODEL_JS)


def run_command(browser, command: str) -> None:
    """Run a JupyterLab command by its id (e.g. ``notebook:run-all-cells``), not by a menu's
    label."""
    found = browser.execute_script(
        "const app = window.jupyterapp;"
        "if (!app || !app.commands.hasCommand(arguments[0])) return false;"
        "app.commands.execute(arguments[0]); return true;", command)
    assert found, f"JupyterLab has no command {command!r} here"


def open_notebook(browser, lab: Lab, name: str, n_code: int) -> None:
    """Open ``name`` (relative to the lab's root) alone in a fresh workspace; wait until the
    notebook's model holds its ``n_code`` code cells and the server reports its kernel idle."""
    browser.get(f"{lab.base}/lab/tree/{name}?reset")

    def loaded():
        lab.alive()
        model = notebook_model(browser)
        return model and model["path"] == name and model["ready"] and len(model["code"]) == n_code

    wait(f"{name} with {n_code} code cells in JupyterLab's notebook model", loaded, timeout=90)
    wait(f"the kernel of {name} to be idle (GET /api/sessions)",
         lambda: lab.kernel_state(name) == "idle", timeout=90)


def run_all(browser, lab: Lab, name: str, timeout: float) -> list[str]:
    """Run every cell (the command behind Run > Run All Cells); wait until each code cell has
    an execution count, or one shows an error (Run All stops there), and the server reports
    the kernel idle. Returns the cells' prompts (``[3]:``, or ``[ ]:`` for a cell not run)."""
    run_command(browser, "notebook:run-all-cells")

    def finished():
        model = notebook_model(browser)
        if not model or model["path"] != name:
            return None
        counts = [cell["count"] for cell in model["code"]]
        done = all(c is not None for c in counts) or any(cell["error"] for cell in model["code"])
        return done and lab.kernel_state(name) == "idle" and [
            f"[{c}]:" if c is not None else "[ ]:" for c in counts]

    return wait(f"Run All of {name} to finish", finished, timeout=timeout, interval=0.5)
