"""Chapter 3's picture of the TensorBoard page: the committed PNG is small, real and shown by
the notebook, and the script that made it still makes it (in headless Chromium)."""

from __future__ import annotations

import importlib.util
import io
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "notebooks" / "images" / "make_tensorboard_picture.py"
PICTURE = ROOT / "notebooks" / "images" / "tensorboard_scalars.png"


def _script():
    spec = importlib.util.spec_from_file_location("make_tensorboard_picture", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _orange_share(img: Image.Image) -> float:
    """Share of TensorBoard's orange (#f57c00 header and curves) among the pixels."""
    rgb = np.asarray(img.convert("RGB").resize((320, 200))).astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return float(((r > 200) & (g > 90) & (g < 160) & (b < 60)).mean())


def test_committed_picture_is_a_small_real_screenshot():
    data = PICTURE.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and 10_000 < len(data) < 200_000, len(data)
    img = Image.open(io.BytesIO(data))
    assert img.size[0] >= 1000 and img.size[1] >= 600, img.size
    assert 0.03 < _orange_share(img) < 0.4  # the header bar is there, not a blank page


def test_notebook_03_shows_the_picture():
    nb = nbformat.read(ROOT / "notebooks" / "03_tensorboard.ipynb", as_version=4)
    shown = [c.source for c in nb.cells if c.cell_type == "markdown"
             and "](images/tensorboard_scalars.png)" in c.source]
    assert len(shown) == 1


def test_shrink_keeps_a_screenshot_under_the_limit():
    big = Image.new("RGB", (1280, 800), "white")
    for x in range(0, 1280, 7):  # plenty of detail
        big.paste((x % 256, 120, 255 - x % 256), (x, 0, x + 3, 800))
    out = io.BytesIO()
    big.save(out, format="PNG")
    small = _script().shrink(out.getvalue(), max_bytes=60_000)
    assert len(small) <= 60_000 and Image.open(io.BytesIO(small)).size == (1280, 800)


@pytest.mark.browser
def test_the_script_makes_the_picture_in_headless_chromium(tmp_path):
    script = _script()
    reason = script.browser_missing()
    if reason:
        warnings.warn(f"TensorBoard picture test skipped: {reason}", stacklevel=1)
        pytest.skip(reason)
    out = script.make_picture(tmp_path / "shot.png")
    img = Image.open(out)
    assert out.stat().st_size < script.MAX_BYTES
    assert img.size[0] == script.WINDOW[0] and _orange_share(img) > 0.03
