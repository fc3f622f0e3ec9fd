"""Is this array something ``SummaryWriter.add_image`` / ``add_images`` can log?

:func:`check_image` answers before TensorBoard does something odd (or raises a cryptic error): it
names what is wrong with an image's shape, dtype or value range and how to fix it — most often
the CHW/HWC trap (a ``(H, W, 3)`` photo from PIL or OpenCV logged with the default
``dataformats="CHW"``). ``course_utils.tb.check_image`` is the same function.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from course_utils.i18n import N_, tr

__all__ = ["ImageShape", "check_image"]

#: ``n`` is None for a single image. Channels are 1 for ``HW`` data.
ImageShape = namedtuple("ImageShape", "n channels height width")
_FORMATS = ("CHW", "HWC", "HW", "NCHW", "NHWC")


def check_image(img, dataformats: str = "CHW") -> ImageShape:
    """Check an image (or batch) before ``writer.add_image``/``add_images``; return its shape.

    Accepts a ``torch.Tensor`` or ``numpy.ndarray`` laid out as ``dataformats`` (``"CHW"``,
    ``"HWC"``, ``"HW"`` for ``add_image``; ``"NCHW"``, ``"NHWC"`` for ``add_images``), uint8
    in 0–255 or float in [0, 1]. Raises ``TypeError``/``ValueError`` that says what is wrong
    and how to fix it: a PIL image (convert with ``np.array``), wrong number of dimensions,
    channels on the wrong side (HWC passed as CHW), floats in 0–255 or normalised below 0.

    Example:
        >>> check_image(np.zeros((512, 768, 3), np.uint8), "HWC")
        ImageShape(n=None, channels=3, height=512, width=768)
    """
    fmt = str(dataformats).upper()
    if fmt not in _FORMATS:
        raise ValueError(tr(f"dataformats={dataformats!r} is not one of {_FORMATS}."))
    arr = _as_array(img)
    if arr.ndim != len(fmt):
        guess = [f for f in _FORMATS if len(f) == arr.ndim]
        fix = N_(f" Try dataformats={guess[0]!r}") if guess else ""
        if arr.ndim == 3 and len(fmt) == 4:
            fix = N_(" For one image use add_image (CHW/HWC), or add a batch axis: x.unsqueeze(0).")
        raise ValueError(tr(
            f"image has {arr.ndim} dimensions {tuple(arr.shape)} but dataformats={fmt!r} "
            f"needs {len(fmt)}.{fix}"
        ))
    dims = dict(zip(fmt, arr.shape, strict=True))
    c = dims.get("C", 1)
    if c not in (1, 3, 4):
        other = {"CHW": "HWC", "HWC": "CHW", "NCHW": "NHWC", "NHWC": "NCHW"}.get(fmt)
        flipped = dict(zip(other, arr.shape, strict=True)) if other else {}
        fix = (N_(f" It looks like {other} data: pass dataformats={other!r}"
                  f" (or permute the axes).") if flipped.get("C") in (1, 3, 4) else "")
        raise ValueError(tr(
            f"shape {tuple(arr.shape)} read as {fmt} has {c} channels; an image needs 1, 3 "
            f"or 4.{fix}"
        ))
    _check_values(arr)
    return ImageShape(dims.get("N"), c, dims["H"], dims["W"])


def _as_array(img) -> np.ndarray:
    if hasattr(img, "getbands"):  # a PIL image
        raise TypeError(tr(
            "add_image needs a torch.Tensor or numpy array, not a PIL image: use "
            "np.array(img) with dataformats='HWC', or transforms.ToTensor()(img) (CHW)."
        ))
    if hasattr(img, "detach"):
        img = img.detach().cpu().numpy()
    if not isinstance(img, np.ndarray):
        raise TypeError(tr(f"expected a torch.Tensor or numpy array, got {type(img).__name__}."))
    return img


def _check_values(arr: np.ndarray) -> None:
    if arr.dtype == np.uint8:
        return
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(tr(f"image dtype {arr.dtype} is not supported; use uint8 or float."))
    if arr.size == 0:
        raise ValueError(tr(f"image of shape {tuple(arr.shape)} is empty."))
    lo, hi = float(arr.min()), float(arr.max())
    if np.issubdtype(arr.dtype, np.integer):
        if lo < 0 or hi > 255:
            raise ValueError(tr(f"integer image values must be 0–255, found {lo:g}…{hi:g}."))
        raise ValueError(tr(f"integer image dtype {arr.dtype}: convert with .astype(np.uint8) "
                            "(or x.to(torch.uint8)) so TensorBoard reads it as 0–255."))
    if hi > 1.0 + 1e-6:
        raise ValueError(tr(
            f"float image values reach {hi:g}, but floats must lie in [0, 1] (TensorBoard "
            "multiplies by 255 and clips, so you would see white). Divide by 255 or use uint8."
        ))
    if lo < -1e-6:
        raise ValueError(tr(
            f"float image values go down to {lo:g}: this looks Normalize()d. Undo it "
            "(x * std + mean) before logging, or log the image before Normalize."
        ))
