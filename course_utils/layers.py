"""Helpers for the layer chapters (P17–P22): sizes, pictures and tables.

* :func:`conv_output_size` / :func:`pool_output_size` — PyTorch's output-size formula,
  ``H_out = ⌊(H + 2p − d(k−1) − 1) / s⌋ + 1``, written once and tested against real layers
  (defined in :mod:`course_utils.conv_sizes`, importable from here).
* :func:`conv_picture` — a matplotlib picture of one position of the sliding window;
  :func:`conv_explorer` wraps it in ipywidgets sliders (the conv-arithmetic explorer).
* :func:`to_display_channels` — reshape e.g. 6 feature maps into two 3-channel "images" for
  ``SummaryWriter.add_images`` (what the course did in P18).
* :func:`layer_table` — per-layer shapes from torchinfo.
"""

from __future__ import annotations

import textwrap

import torch
from matplotlib.patches import Rectangle
from torch import nn

from course_utils.conv_sizes import conv_output_size, pool_output_size
from course_utils.i18n import tr
from course_utils.viz import Figure, new_figure

__all__ = [
    "conv_output_size", "pool_output_size", "conv_picture", "conv_explorer",
    "to_display_channels", "layer_table",
]  # fmt: skip


# ------------------------------------------------------------------------ the picture
def _grid(ax, n: int, offset: int = 0, **style) -> None:
    for r in range(n):
        for c in range(n):
            ax.add_patch(Rectangle((c + offset, r + offset), 1, 1, **style))


def _frame(ax, n: int, title: str) -> None:
    ax.set_xlim(-0.1, n + 0.1)
    ax.set_ylim(n + 0.1, -0.1)  # row 0 on top, like a matrix
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)


def conv_picture(input_size: int = 5, kernel_size: int = 3, stride: int = 1, padding: int = 0,
                 dilation: int = 1, position: int = 0, values=None, kernel=None) -> Figure:
    """Draw one step of a convolution's sliding window (the explorer's callback).

    Left: the input (white) inside its zero padding (grey); the cells the kernel reads for
    output cell number ``position`` (row-major, wrapped around) are blue. Right: the output
    grid with that cell in orange. The title states the size formula with the numbers filled in.
    ``values`` (an ``input_size × input_size`` array) writes the input's numbers into the cells.
    ``kernel`` (a ``kernel_size × kernel_size`` array) adds, next to the window, the kernel and
    — when ``values`` is given too — the element-wise products of window and kernel, whose sum
    is written into the orange output cell.

    Returns a :class:`course_utils.viz.Figure` (shown when it is the last line of a cell). A
    combination that does not fit is drawn with the reason instead of raising.

    >>> fig = conv_picture(5, 3, stride=2, padding=1, position=4)   # output 3×3, centre cell
    >>> fig = conv_picture(5, 3, values=torch.ones(5, 5), kernel=torch.eye(3))  # 4 panels
    """
    values = _as_grid(values, input_size, "values")
    kernel = _as_grid(kernel, kernel_size, "kernel")
    panels = 2 + (kernel is not None) + (kernel is not None and values is not None)
    n_pad = input_size + 2 * padding
    ratios = [n_pad] + [kernel_size] * (panels - 2) + [max(2, n_pad * 2 // 3)]
    fig = new_figure(3 + 2.2 * panels, 4)
    axes = fig.subplots(1, panels, width_ratios=ratios)
    ax_in, ax_out = axes[0], axes[-1]
    _draw_input(ax_in, input_size, padding, values)
    try:
        out = conv_output_size(input_size, kernel_size, stride, padding, dilation)
    except ValueError as exc:
        for ax in axes[1:]:
            ax.axis("off")
        ax_out.text(0.5, 0.5, "no output:\n" + "\n".join(textwrap.wrap(str(exc), 34)),
                    ha="center", va="center", fontsize=9, color="firebrick",
                    transform=ax_out.transAxes)
        fig.suptitle(f"kernel {kernel_size}, stride {stride}, dilation {dilation}")
        return fig
    row, col = divmod(position % (out * out), out)
    top, left = row * stride, col * stride
    for a in range(kernel_size):
        for b in range(kernel_size):
            ax_in.add_patch(Rectangle((left + b * dilation, top + a * dilation), 1, 1,
                                      facecolor="tab:blue", alpha=0.45, edgecolor="tab:blue"))
    span = dilation * (kernel_size - 1) + 1
    ax_in.add_patch(Rectangle((left, top), span, span, fill=False, edgecolor="tab:blue", lw=2))
    total = None
    if kernel is not None:
        _draw_numbers(axes[1], [[f"{v:g}" for v in row] for row in kernel.tolist()], "kernel",
                      facecolor="#fdebd0")
    if kernel is not None and values is not None:
        padded = torch.zeros(n_pad, n_pad, dtype=torch.float64)
        padded[padding:padding + input_size, padding:padding + input_size] = values
        window = padded[top:top + span:dilation, left:left + span:dilation]
        products = window * kernel
        total = products.sum().item()
        labels = [[f"{window[r, c].item():g}·{kernel[r, c].item():g}\n= {products[r, c].item():g}"
                   for c in range(kernel_size)] for r in range(kernel_size)]
        _draw_numbers(axes[2], labels, f"window ⊙ kernel, sum = {total:g}", facecolor="#d6eaf8")
    _grid(ax_out, out, facecolor="white", edgecolor="0.3")
    ax_out.add_patch(Rectangle((col, row), 1, 1, facecolor="tab:orange", alpha=0.7))
    if total is not None:
        ax_out.text(col + 0.5, row + 0.5, f"{total:g}", ha="center", va="center", fontsize=9)
    _frame(ax_out, out, f"output {out}×{out}, cell ({row}, {col})")
    fig.suptitle(f"H_out = ⌊({input_size} + 2·{padding} − {dilation}·({kernel_size}−1) − 1)"
                 f" / {stride}⌋ + 1 = {out}")
    return fig


def _as_grid(array, size: int, name: str) -> torch.Tensor | None:
    """``array`` as a float64 ``size × size`` tensor (None stays None); ValueError otherwise."""
    if array is None:
        return None
    grid = torch.as_tensor(array).detach().to(torch.float64)
    if tuple(grid.shape) != (size, size):
        raise ValueError(tr(f"{name} has shape {tuple(grid.shape)}, expected ({size}, {size})."))
    return grid


def _draw_input(ax, input_size: int, padding: int, values) -> None:
    n_pad = input_size + 2 * padding
    _grid(ax, n_pad, facecolor="0.88", edgecolor="0.6", linestyle=":")
    _grid(ax, input_size, offset=padding, facecolor="white", edgecolor="0.3")
    if values is not None:
        for r in range(input_size):
            for c in range(input_size):
                ax.text(c + padding + 0.5, r + padding + 0.5, f"{values[r, c].item():g}",
                        ha="center", va="center", fontsize=9)
    _frame(ax, n_pad, f"input {input_size}×{input_size}, padding {padding}")


def _draw_numbers(ax, labels: list[list[str]], title: str, facecolor: str) -> None:
    """A small square grid with a text in each cell (the kernel, or the products)."""
    n = len(labels)
    _grid(ax, n, facecolor=facecolor, edgecolor="0.3")
    for r in range(n):
        for c in range(n):
            ax.text(c + 0.5, r + 0.5, labels[r][c], ha="center", va="center", fontsize=8)
    _frame(ax, n, title)


def conv_explorer(input_size: int = 5, kernel_size: int = 3, stride: int = 1, padding: int = 0,
                  dilation: int = 1):
    """Sliders for input size, kernel, stride, padding, dilation and the output cell; every
    change redraws :func:`conv_picture`. Returns an ``ipywidgets.VBox`` (display it).

    The box's ``.sliders`` dict gives the sliders by parameter name (the ``position`` slider's
    maximum follows the output size).
    """
    import ipywidgets as w
    from IPython.display import display

    def slider(value, low, high, label):
        return w.IntSlider(value=value, min=low, max=high, description=label,
                           continuous_update=False)

    sliders = {
        "input_size": slider(input_size, 1, 12, "input"),
        "kernel_size": slider(kernel_size, 1, 7, "kernel"),
        "stride": slider(stride, 1, 4, "stride"),
        "padding": slider(padding, 0, 3, "padding"),
        "dilation": slider(dilation, 1, 3, "dilation"),
        "position": slider(0, 0, 0, "output cell"),
    }
    output = w.Output()

    def redraw(change=None):
        values = {name: s.value for name, s in sliders.items()}
        try:
            n = conv_output_size(*(values[k] for k in ("input_size", "kernel_size", "stride",
                                                       "padding", "dilation")))
        except ValueError:
            n = 1
        if sliders["position"].max != n * n - 1:
            sliders["position"].max = n * n - 1
            return  # changing the max may move the value, which calls redraw again
        with output:
            output.clear_output(wait=True)
            display(conv_picture(**values))

    for s in sliders.values():
        s.observe(redraw, names=["value", "max"])
    box = w.VBox([w.HBox(list(sliders.values())[:3]), w.HBox(list(sliders.values())[3:]),
                  output])
    box.sliders = sliders
    redraw()
    return box


# ------------------------------------------------------------------------ images
def to_display_channels(x: torch.Tensor, channels: int = 3, rescale: bool = False) -> torch.Tensor:
    """Reshape ``(N, C, H, W)`` feature maps to ``(N·C/channels, channels, H, W)`` images.

    The course's trick in P18: 6 output channels cannot be shown as a picture, so
    ``reshape(-1, 3, 30, 30)`` turns each image's 6 maps into two RGB images. ``rescale=True``
    stretches every image to 0–1 (``add_images`` clips floats outside 0–1).

    >>> to_display_channels(torch.zeros(64, 6, 30, 30)).shape
    torch.Size([128, 3, 30, 30])
    """
    if x.dim() != 4:
        raise ValueError(tr(f"expected a (N, C, H, W) batch, got shape {tuple(x.shape)}."))
    n, c, h, w = x.shape
    if c % channels:
        raise ValueError(tr(f"{c} channels cannot be split into images of {channels} channels; "
                            f"use a channel count divisible by {channels}."))
    out = x.detach().reshape(-1, channels, h, w)
    if rescale:
        low = out.amin(dim=(1, 2, 3), keepdim=True)
        high = out.amax(dim=(1, 2, 3), keepdim=True)
        out = (out - low) / (high - low).clamp_min(1e-8)
    return out


# ------------------------------------------------------------------------ tables
def layer_table(model: nn.Module, input_size, **kwargs):
    """Per-layer input/output shapes and parameter counts, from ``torchinfo.summary``.

    ``input_size`` includes the batch, e.g. ``(64, 3, 32, 32)``. Extra keyword arguments go
    to ``torchinfo.summary``. The result prints as a table (show it as a cell's last line).

    >>> from course_utils.models import Tudui
    >>> print(layer_table(Tudui(), (64, 3, 32, 32)))   # doctest: +SKIP
    """
    import torchinfo

    options = dict(col_names=("input_size", "output_size", "num_params"), verbose=0,
                   device="cpu")
    options.update(kwargs)
    return torchinfo.summary(model, input_size=tuple(input_size), **options)
