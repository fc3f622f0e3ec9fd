"""Looking at images and tensors in a notebook, and the transforms playground (P10–P15).

* :func:`describe` — one line with type, dtype, shape and value range (the course's
  "print(type(x))" habit, with the facts that matter).
* :func:`show_images` / :func:`show_batch` — a grid of PIL images, ``(C, H, W)`` tensors,
  ``(H, W, C)`` arrays or an ``(N, C, H, W)`` batch, with titles.
* :class:`Figure` / :func:`new_figure` / :func:`style_axes` / :data:`STYLE` — the one figure
  style of the course: every picture (here, in ``tb``, ``predict`` and ``layers``) is a
  :class:`Figure` that displays itself in a notebook (no pyplot state).
* :class:`TransformsPlayground` — ipywidgets sliders for ``Resize``, ``RandomCrop``, flip and
  ``Normalize``; its callback :meth:`TransformsPlayground.render` can be called directly too.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib.figure
import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from course_utils.i18n import tr

__all__ = [
    "STYLE", "Figure", "new_figure", "style_axes", "describe", "to_hwc", "show_images",
    "show_batch", "playground_transform", "PlaygroundResult", "TransformsPlayground",
]  # fmt: skip


#: The course's figure style, used by every picture it draws.
STYLE = {
    "dpi": 80,  # resolution of the PNG a notebook shows
    "title_size": 10,  # font size of panel titles
    "grid_alpha": 0.3,  # a light grid on line plots
    "marker_below": 30,  # lines with fewer points than this mark each point with a dot
}


class Figure(matplotlib.figure.Figure):
    """A matplotlib figure that shows itself as PNG when it is a cell's value or is
    ``display()``-ed — whatever matplotlib backend is active."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=STYLE["dpi"])
        return buf.getvalue()


def new_figure(width: float, height: float) -> Figure:
    """A fresh :class:`Figure` of ``width`` x ``height`` inches (constrained layout).

    >>> axes = new_figure(8, 3).subplots(1, 2)     # two panels side by side
    """
    return Figure(figsize=(width, height), layout="constrained")


def style_axes(ax, title: str = "", xlabel: str = "", ylabel: str = "", grid: bool = True):
    """Give one panel the course style: title, axis labels, light grid. Returns ``ax``."""
    ax.set_title(title, fontsize=STYLE["title_size"])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if grid:
        ax.grid(alpha=STYLE["grid_alpha"])
    return ax


def describe(x) -> str:
    """One line about ``x``: type, dtype, shape (or PIL size/mode) and value range.

    >>> describe(torch.zeros(3, 2, 2))
    'Tensor float32 shape (3, 2, 2) range [0, 0]'
    """
    if isinstance(x, Image.Image):
        w, h = x.size
        return f"PIL {type(x).__name__} mode {x.mode} size (W={w}, H={h})"
    if isinstance(x, torch.Tensor):
        kind, dtype, arr = "Tensor", str(x.dtype).replace("torch.", ""), x.detach()
    elif isinstance(x, np.ndarray):
        kind, dtype, arr = "ndarray", str(x.dtype), x
    else:
        return f"{type(x).__name__}: {x!r}"[:200]
    if arr.numel() if isinstance(arr, torch.Tensor) else arr.size:
        rng = f" range [{float(arr.min()):.4g}, {float(arr.max()):.4g}]"
    else:
        rng = " (empty)"
    return f"{kind} {dtype} shape {tuple(arr.shape)}{rng}"


def to_hwc(img) -> np.ndarray:
    """An image as an ``(H, W, C)`` or ``(H, W)`` array matplotlib can draw.

    Takes a PIL image, a ``(C, H, W)`` / ``(H, W)`` tensor (float in [0, 1] or uint8) or an
    ``(H, W, C)`` array. Floats are clipped to [0, 1]. Raises ``ValueError`` for other shapes.
    """
    if isinstance(img, Image.Image):
        return np.asarray(img.convert("RGB") if img.mode not in ("RGB", "L") else img)
    if isinstance(img, torch.Tensor):
        t = img.detach().cpu()
        if t.ndim == 3 and t.shape[0] in (1, 3, 4):
            t = t.permute(1, 2, 0)
        arr = t.numpy()
    else:
        arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ValueError(tr(f"cannot draw an image of shape {arr.shape}; expected (C, H, W) "
                            "tensor, (H, W, C) array or PIL image."))
    if arr.dtype != np.uint8:
        arr = np.clip(arr.astype(np.float32), 0.0, 1.0)
    return arr


def show_images(images, titles=None, ncols: int = 8, size: float = 1.6) -> Figure:
    """A grid of images (list of PIL/tensors/arrays, or an ``(N, C, H, W)`` batch).

    Returns a :class:`Figure`, which displays itself as a cell's last value.

    Example:
        >>> fig = show_images([img0, img1], titles=["cat", "ship"])   # doctest: +SKIP
    """
    if isinstance(images, torch.Tensor) and images.ndim == 4:
        images = list(images)
    images = list(images)
    if not images:
        raise ValueError(tr("show_images got no images."))
    if titles is not None and len(titles) != len(images):
        raise ValueError(tr(f"{len(titles)} titles for {len(images)} images."))
    cols = min(ncols, len(images))
    rows = -(-len(images) // cols)
    fig = new_figure(size * cols, size * rows + (0.3 * rows if titles else 0))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i < len(images):
            arr = to_hwc(images[i])
            ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=STYLE["title_size"])
    return fig


def show_batch(imgs: torch.Tensor, targets=None, classes=None, n: int = 16,
               ncols: int = 8) -> Figure:
    """The first ``n`` images of an ``(N, C, H, W)`` batch titled by class name.

    ``targets`` are int labels (tensor or list); ``classes`` maps them to names.
    """
    imgs = imgs[:n]
    titles = None
    if targets is not None:
        labels = [int(t) for t in list(targets)[: len(imgs)]]
        titles = [classes[t] if classes else str(t) for t in labels]
    return show_images(imgs, titles=titles, ncols=ncols)


# --------------------------------------------------------------------- transforms playground
def playground_transform(resize: int = 256, keep_aspect: bool = True, crop: int = 0,
                         flip: bool = False, normalize: bool = False, mean: float = 0.5,
                         std: float = 0.5) -> transforms.Compose:
    """The ``Compose`` the playground builds from its controls.

    ``Resize(resize)`` (an int: the shorter side becomes ``resize``, aspect kept) or
    ``Resize((resize, resize))`` (a tuple: exactly that size); then ``RandomCrop(crop)`` if
    ``crop``, a horizontal flip if ``flip``, ``ToTensor()``, and
    ``Normalize([mean]*3, [std]*3)`` if ``normalize``.
    """
    steps = [transforms.Resize(resize if keep_aspect else (resize, resize))]
    if crop:
        steps.append(transforms.RandomCrop(crop))
    if flip:
        steps.append(transforms.RandomHorizontalFlip(p=1.0))
    steps.append(transforms.ToTensor())
    if normalize:
        steps.append(transforms.Normalize([mean] * 3, [std] * 3))
    return transforms.Compose(steps)


@dataclass
class PlaygroundResult:
    """What one playground update produced: the transform, its output tensor
    ``(3, H, W)`` (or None if the settings were invalid), a text report, and the figure."""

    transform: transforms.Compose
    output: torch.Tensor | None
    text: str
    figure: Figure | None


class TransformsPlayground:
    """Sliders for Resize / RandomCrop / flip / Normalize on one image, showing before/after.

    ``display(pg.widget)`` shows the controls; every change calls :meth:`render`, which
    you can also call yourself (the notebook does, so CI runs the callback).

    Example:
        >>> pg = TransformsPlayground(Image.open(path))             # doctest: +SKIP
        >>> display(pg.widget)                                       # doctest: +SKIP
        >>> pg.render(resize=128, crop=100, normalize=True).output.shape
        torch.Size([3, 100, 100])
    """

    def __init__(self, image: Image.Image, **settings):
        import ipywidgets as w  # 0.8 s to import (python -X importtime): only for the widget

        self.image = image.convert("RGB")
        style = {"description_width": "110px"}
        self.controls = {
            "resize": w.IntSlider(value=256, min=16, max=512, step=8,
                                  description="Resize size", style=style),
            "keep_aspect": w.Checkbox(value=True, description="int (keep aspect)"),
            "crop": w.IntSlider(value=0, min=0, max=512, step=8,
                                description="RandomCrop (0=off)", style=style),
            "flip": w.Checkbox(value=False, description="horizontal flip"),
            "normalize": w.Checkbox(value=False, description="Normalize"),
            "mean": w.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05,
                                  description="mean", style=style),
            "std": w.FloatSlider(value=0.5, min=0.05, max=1.0, step=0.05,
                                 description="std", style=style),
            "seed": w.IntText(value=0, description="seed", style=style),
        }
        for key, value in settings.items():
            self.controls[key].value = value
        self.out = w.Output()
        self.last: PlaygroundResult | None = None  # what the latest render produced
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.widget = w.VBox([w.HBox([w.VBox(list(self.controls.values())), self.out])])

    def values(self) -> dict:
        """Current control values as keyword arguments for :meth:`render`."""
        return {key: control.value for key, control in self.controls.items()}

    def _on_change(self, _change=None) -> None:
        self.render(**self.values())

    def render(self, seed: int = 0, **settings) -> PlaygroundResult:
        """Apply the transform built from ``settings`` (see :func:`playground_transform`)
        to the image with ``torch.manual_seed(seed)`` and draw before/after into the widget.

        Settings that cannot work (a crop larger than the resized image) give a message,
        not an exception; anything else that fails raises.
        """
        from IPython.display import clear_output, display  # 0.6 s; a kernel has it loaded

        transform = playground_transform(**settings)
        too_big = self._crop_problem(settings)
        if too_big:
            result = PlaygroundResult(transform, None, too_big, None)
        else:
            torch.manual_seed(seed)
            out = transform(self.image)
            text = f"{transform}\ninput : {describe(self.image)}\noutput: {describe(out)}"
            shown = out
            if settings.get("normalize"):
                shown = out * settings.get("std", 0.5) + settings.get("mean", 0.5)
                text += "\n" + tr("(after Normalize the picture is drawn un-normalized: "
                                   "x*std + mean)")
            fig = show_images([self.image, shown], titles=["input", "output"], ncols=2, size=3)
            result = PlaygroundResult(transform, out, text, fig)
        with self.out:
            clear_output(wait=True)
            print(result.text)
            if result.figure is not None:
                display(result.figure)
        self.last = result
        return result

    def _crop_problem(self, settings: dict) -> str:
        crop, resize = settings.get("crop", 0), settings.get("resize", 256)
        if not crop:
            return ""
        w, h = self.image.size
        if settings.get("keep_aspect", True):
            short = min(w, h)
            h, w = (resize, int(resize * w / h)) if h == short else (int(resize * h / w), resize)
        else:
            h = w = resize
        if crop > min(h, w):
            return tr(f"RandomCrop({crop}) does not fit the resized image {h}x{w} (HxW): "
                      "make the crop smaller or the resize larger.")
        return ""
