"""Image files: list the photos in a folder, open any photo as RGB, the bundled demo photos.

The data sets in :mod:`course_utils.data` and the chapters' own ``Dataset`` classes read image
files through these, so an odd file (a GIF placeholder, a transparent PNG, 16-bit grayscale, a
truncated download) gets a clear message or a sensible picture instead of a crash.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from course_utils import settings
from course_utils.i18n import N_, tr

__all__ = ["PHOTO_SUFFIXES", "DEMO_IMAGES", "photo_files", "open_rgb", "to_rgb", "demo_image",
           "check_pixel_count"]

#: File endings read as photos; anything else in an image folder is skipped and reported.
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DEMO_IMAGES = settings.BUNDLED_DATA / "demo-images"


def photo_files(folder: str | os.PathLike, verbose: bool = True) -> list[Path]:
    """Sorted photos in ``folder``; other files (GIF placeholders, text, …) are skipped and
    reported in one line. Raises ``FileNotFoundError``/``ValueError`` for a missing or
    photo-less folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(tr(f"image folder {folder} does not exist."))
    files = sorted(p for p in folder.iterdir() if p.is_file())
    photos = [p for p in files if p.suffix.lower() in PHOTO_SUFFIXES]
    skipped = [p.name for p in files if p not in photos]
    if skipped:
        if verbose:
            names = ", ".join(skipped)
            print("[course_utils] " + tr(f"{folder}: skipped {len(skipped)} non-photo "
                                         f"file(s): {names}"))
    if not photos:
        raise ValueError(tr(f"{folder} holds no photos ({', '.join(PHOTO_SUFFIXES)})."))
    return photos


def open_rgb(path: str | os.PathLike, *, size: tuple[int, int] | None = None,
             kind: str = N_("these")) -> Image.Image:
    """Open an image file as RGB, upright (EXIF rotation applied), any mode converted with
    :func:`to_rgb`; the first frame of an animation.

    ``size``: the ``(width, height)`` the image must have (checked from the header, before
    decoding); ``kind`` names the images in that message (e.g. ``"CIFAR-10"``).

    Raises ``ValueError`` naming the file when it is not an image, is truncated or damaged,
    or declares more pixels than Pillow's safety limit ``Image.MAX_IMAGE_PIXELS`` (a
    "decompression bomb": such a file is refused from its header, never decoded).
    ``FileNotFoundError``/``IsADirectoryError``/``PermissionError`` pass through.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # notes on odd tags: the result or error says enough
            # Pillow only warns between 1x and 2x its limit: refuse those files as well
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                check_pixel_count(img.size, path)
                if size is not None and img.size != tuple(size):
                    raise ValueError(tr(
                        f"{path} is {img.size[0]}×{img.size[1]} pixels, but {kind} images are "
                        f"{size[0]}×{size[1]}. Resize it or move it out of the data folder."))
                img.load()
                return to_rgb(ImageOps.exif_transpose(img))
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(_refused(path, exc)) from None
    except ValueError as exc:
        if str(exc).startswith(f"{path} "):  # already ours (check_pixel_count)
            raise
        raise ValueError(_unreadable(path, exc)) from None
    except Exception as exc:  # noqa: BLE001 – any decoder failure means "not a usable image"
        raise ValueError(_unreadable(path, exc)) from None


def _unreadable(path, exc) -> str:
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return tr(f"{path} is not a readable image ({detail}). Replace or delete the file.")


def _refused(path, exc) -> str:
    limit = str(exc).split(",")[0]
    return tr(f"{path} was refused for safety: its header declares more pixels than Pillow "
              f"allows ({limit}; a 'decompression bomb' could fill the memory). "
              "Use a smaller image; to trust this one, raise PIL.Image.MAX_IMAGE_PIXELS first.")


def check_pixel_count(size: tuple[int, int], source="image") -> None:
    """``ValueError`` when an image of ``size`` (width, height) has more pixels than
    ``PIL.Image.MAX_IMAGE_PIXELS`` (Pillow's decompression-bomb limit; None = no limit).

    >>> check_pixel_count((32, 32))
    """
    limit = Image.MAX_IMAGE_PIXELS
    width, height = size
    if limit is not None and width * height > limit:
        raise ValueError(tr(
            f"{source} was refused for safety: {width}×{height} = {width * height:,} pixels is "
            f"more than Pillow's limit of {limit:,} (a 'decompression bomb' could fill the "
            "memory). Use a smaller image; to trust this one, raise "
            "PIL.Image.MAX_IMAGE_PIXELS first."))


def to_rgb(img: Image.Image) -> Image.Image:
    """A PIL image of any mode as RGB.

    Transparent pixels become white, as image viewers show them (a plain ``convert("RGB")``
    turns them black); 16-bit grayscale is scaled to 8 bits instead of clipped to white;
    CMYK, YCbCr, LAB, HSV and float images are converted. ``ValueError`` for an image with
    more pixels than Pillow's safety limit (see :func:`check_pixel_count`).
    """
    check_pixel_count(img.size)
    if img.mode == "La":  # premultiplied alpha, which Pillow cannot convert directly
        img = Image.merge("LA", img.split())
    if img.mode in ("RGBA", "LA", "PA", "RGBa") or (
            img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(img, dtype=np.float64)
        if values.size and values.max() > 255:
            values = values / 257  # 0–65535 → 0–255
        values = np.nan_to_num(values, nan=0.0, posinf=255.0, neginf=0.0)
        return Image.fromarray(values.clip(0, 255).astype(np.uint8), "L").convert("RGB")
    if img.mode == "LAB":  # Pillow has no direct LAB → RGB conversion
        return Image.merge("RGB", [img.getchannel("L")] * 3)  # its lightness, as gray
    return img.convert("RGB")


def demo_image(name: str = "dog") -> Path:
    """Path of a bundled demo photo: ``"dog"`` or ``"airplane"``."""
    path = DEMO_IMAGES / f"{name}.png"
    if not path.exists():
        choices = sorted(p.stem for p in DEMO_IMAGES.glob("*.png"))
        raise FileNotFoundError(tr(f"no demo photo {name!r}; choose one of {choices}."))
    return path
