"""Image files: list the photos in a folder, open any photo as RGB, the bundled demo photos.

The data sets in :mod:`course_utils.data` and the chapters' own ``Dataset`` classes read image
files through these, so an odd file (a GIF placeholder, a transparent PNG, 16-bit grayscale, a
truncated download) gets a clear message or a sensible picture instead of a crash.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from course_utils import settings

__all__ = ["PHOTO_SUFFIXES", "DEMO_IMAGES", "photo_files", "open_rgb", "to_rgb", "demo_image"]

#: File endings read as photos; anything else in an image folder is skipped and reported.
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DEMO_IMAGES = settings.BUNDLED_DATA / "demo-images"


def photo_files(folder: str | os.PathLike, verbose: bool = True) -> list[Path]:
    """Sorted photos in ``folder``; other files (GIF placeholders, text, …) are skipped and
    reported in one line. Raises ``FileNotFoundError``/``ValueError`` for a missing or
    photo-less folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist.")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    photos = [p for p in files if p.suffix.lower() in PHOTO_SUFFIXES]
    skipped = [p.name for p in files if p not in photos]
    if skipped:
        if verbose:
            print(f"[course_utils] {folder}: skipped {len(skipped)} non-photo file(s): "
                  f"{', '.join(skipped)}")
    if not photos:
        raise ValueError(f"{folder} holds no photos ({', '.join(PHOTO_SUFFIXES)}).")
    return photos


def open_rgb(path: str | os.PathLike) -> Image.Image:
    """Open an image file as RGB (any mode is converted with :func:`to_rgb`).

    Raises ``ValueError`` naming the file when it is not an image or is truncated.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            return to_rgb(img)
    except FileNotFoundError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValueError(
            f"{path} is not a readable image ({exc}). Replace or delete the file."
        ) from exc


def to_rgb(img: Image.Image) -> Image.Image:
    """A PIL image of any mode as RGB.

    Transparent pixels become white, as image viewers show them (a plain ``convert("RGB")``
    turns them black); 16-bit grayscale is scaled to 8 bits instead of clipped to white.
    """
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode in ("I", "I;16", "I;16B", "I;16L"):
        values = np.asarray(img, dtype=np.float64)
        if values.max(initial=0) > 255:
            values = values / 257  # 0–65535 → 0–255
        return Image.fromarray(values.clip(0, 255).astype(np.uint8), "L").convert("RGB")
    return img.convert("RGB")


def demo_image(name: str = "dog") -> Path:
    """Path of a bundled demo photo: ``"dog"`` or ``"airplane"``."""
    path = DEMO_IMAGES / f"{name}.png"
    if not path.exists():
        choices = sorted(p.stem for p in DEMO_IMAGES.glob("*.png"))
        raise FileNotFoundError(f"no demo photo {name!r}; choose one of {choices}.")
    return path
