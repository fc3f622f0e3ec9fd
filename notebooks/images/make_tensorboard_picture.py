"""Make ``tensorboard_scalars.png``: the real TensorBoard page showing chapter 3's scalars.

Chapter 3 shows this picture so a learner whose inline TensorBoard frame stays blank still
sees what to expect. The script does what the chapter does — logs ``y=x`` (P7), ``y=2x`` and
the course's ``3*i`` cell (P8) with ``SummaryWriter`` into a fresh folder — starts
TensorBoard on it (``course_utils.tb.launch``), opens the SCALARS page in headless Chromium
(Selenium with the system's chromedriver; nothing is downloaded), waits until the three
curves are drawn, and saves a screenshot shrunk to a small palette PNG.

Run from the repository root::

    python notebooks/images/make_tensorboard_picture.py            # rewrites the PNG
    python notebooks/images/make_tensorboard_picture.py out.png    # somewhere else

``tests/test_chapter_03_picture.py`` runs it into a temporary folder (skipped where there is
no Chromium) and checks the committed picture.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
PICTURE = HERE / "tensorboard_scalars.png"
TAGS = ("y=x", "y=2x", "y=2x (course: 3*i)")
WINDOW = (1280, 900)
MAX_BYTES = 200_000
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-extensions",
                  "--hide-scrollbars")
# the class names of every <path> in the page, shadow DOMs included (the charts live there)
_PATH_CLASSES = """
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


def browser_missing() -> str | None:
    """Why no screenshot can be taken here, or None."""
    if not shutil.which("chromium") and not Path("/usr/bin/chromium").exists():
        return "no Chromium (apt-get install chromium chromium-driver)"
    if not shutil.which("chromedriver") and not Path("/usr/bin/chromedriver").exists():
        return "no chromedriver (apt-get install chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


def log_chapter_scalars(logdir: Path) -> None:
    """The scalars chapter 3 logs (P7's y=x, P8's y=2x fixed and as the course wrote it)."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(logdir)) as writer:
        for i in range(100):
            writer.add_scalar("y=x", i, i)
            writer.add_scalar("y=2x", 2 * i, i)
            writer.add_scalar("y=2x (course: 3*i)", 3 * i, i)


def _wait(what: str, predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"TensorBoard page: timed out after {timeout:.0f} s waiting for "
                               f"{what}")
        time.sleep(0.25)


def _screenshot(url: str, profile: Path) -> bytes:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must not go online
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in CHROMIUM_FLAGS + (f"--window-size={WINDOW[0]},{WINDOW[1]}",
                                  f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")
                                              or "/usr/bin/chromedriver"), options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.get(url + "#scalars&tagFilter=y%3D")  # one group holding the three charts
        _wait("the three tags", lambda: all(
            t in driver.find_element(By.TAG_NAME, "body").text for t in TAGS), 60)
        _wait("three drawn curves", lambda: sum(
            "line" in c.split() for c in driver.execute_script(_PATH_CLASSES)) >= len(TAGS), 30)
        time.sleep(1.0)  # let the charts finish their fade-in
        return driver.get_screenshot_as_png()
    finally:
        driver.quit()


def shrink(png: bytes, max_bytes: int = MAX_BYTES) -> bytes:
    """The screenshot as a palette PNG (TensorBoard's flat colours survive 64 colours)."""
    img = Image.open(io.BytesIO(png)).convert("RGB")
    for colours in (64, 32, 16):
        out = io.BytesIO()
        img.quantize(colors=colours).save(out, format="PNG", optimize=True)
        if out.tell() <= max_bytes:
            return out.getvalue()
    raise ValueError(f"screenshot stays above {max_bytes} bytes even with 16 colours.")


def make_picture(out: Path = PICTURE) -> Path:
    """Log, launch TensorBoard, screenshot in headless Chromium, save ``out``. Returns it."""
    from course_utils import tb

    reason = browser_missing()
    if reason:
        raise RuntimeError(f"cannot take the TensorBoard screenshot: {reason}")
    with tempfile.TemporaryDirectory(prefix="tb_picture_") as tmp:
        logdir = Path(tmp) / "runs" / "p7_p8"
        log_chapter_scalars(logdir)
        with tb.launch(logdir.parent) as board:
            png = _screenshot(board.url, Path(tmp) / "chromium-profile")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(shrink(png))
    return out


if __name__ == "__main__":
    target = make_picture(Path(sys.argv[1]) if len(sys.argv) > 1 else PICTURE)
    print(f"wrote {target} ({target.stat().st_size:,} bytes)")
