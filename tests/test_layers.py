"""course_utils.layers: the output-size formula against real PyTorch layers, the conv
picture and explorer, the channel reshape for TensorBoard, and the torchinfo table."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from _helpers import layer_shapes
from matplotlib.patches import Rectangle
from torch import nn

from course_utils.layers import (
    conv_explorer,
    conv_output_size,
    conv_picture,
    layer_table,
    pool_output_size,
    to_display_channels,
)
from course_utils.models import Tudui, TuduiBN, TuduiPlain


def _real_conv(size, k, s, p, d):
    """Output side of a real convolution (``F.conv2d`` is what ``nn.Conv2d.forward`` calls)."""
    try:
        x, w = torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k)
        return F.conv2d(x, w, stride=s, padding=p, dilation=d).shape[-1]
    except RuntimeError:
        return None


def _mine(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ValueError:
        return None


def test_conv_output_size_matches_nn_conv2d():
    combos = list(itertools.product(range(1, 12), range(1, 6), range(1, 4), range(0, 3),
                                    range(1, 4)))
    assert len(combos) > 1000
    mismatches = [(c, _mine(conv_output_size, *c), _real_conv(*c)) for c in combos
                  if _mine(conv_output_size, *c) != _real_conv(*c)]
    assert not mismatches, mismatches[:5]
    # both sides agree on plenty of valid and of impossible combinations
    assert sum(_real_conv(*c) is None for c in combos) > 100


def test_conv_output_size_rectangular_and_large_inputs():
    layer = nn.Conv2d(3, 4, kernel_size=(5, 3), stride=(2, 3), padding=(1, 2), dilation=(2, 1))
    out = layer(torch.zeros(1, 3, 37, 50))
    assert out.shape[-2] == conv_output_size(37, 5, 2, 1, 2)
    assert out.shape[-1] == conv_output_size(50, 3, 3, 2, 1)
    assert conv_output_size(224, 7, stride=2, padding=3) == 112  # ResNet's stem


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize("size,k,d", [(5, 3, 1), (8, 5, 1), (9, 3, 2), (4, 4, 1)])
def test_conv_output_size_same_and_valid(size, k, d):
    x = torch.zeros(1, 1, size, size)
    for padding in ("same", "valid"):
        real = nn.Conv2d(1, 1, k, padding=padding, dilation=d)(x).shape[-1]
        assert conv_output_size(size, k, padding=padding, dilation=d) == real
    with pytest.raises(ValueError, match="stride=1"):
        conv_output_size(size, k, stride=2, padding="same")


def test_conv_output_size_rejects_bad_values():
    with pytest.raises(ValueError, match="more than the padded input"):
        conv_output_size(3, 5)
    with pytest.raises(TypeError, match="size must be an int"):
        conv_output_size(5.0, 3)
    with pytest.raises(ValueError, match="stride must be at least 1"):
        conv_output_size(5, 3, stride=0)
    with pytest.raises(ValueError, match="padding must be 0 or more"):
        conv_output_size(5, 3, padding=-1)


def _error(fn, *args, **kwargs) -> tuple[str, str]:
    """(exception class name, message) of a call that must fail."""
    with pytest.raises((TypeError, ValueError)) as info:
        fn(*args, **kwargs)
    return type(info.value).__name__, str(info.value)


@pytest.mark.parametrize("padding", [0, "same"])
def test_each_bad_size_argument_gets_its_own_message(padding):
    conv = {"size": 5, "kernel_size": 3, "stride": 1, "dilation": 1, "padding": padding}
    for name in ("size", "kernel_size", "stride", "dilation"):
        assert _error(conv_output_size, **{**conv, name: 0}) == (
            "ValueError", f"{name} must be at least 1, got 0.")
        assert _error(conv_output_size, **{**conv, name: 2.0}) == (
            "TypeError", f"{name} must be an int, got 2.0 (float).")
    assert _error(conv_output_size, 5, True, padding=padding) == (
        "TypeError", "kernel_size must be an int, got True (bool).")
    if padding == "same":
        assert _error(conv_output_size, 5, 3, stride=2, padding="same") == (
            "ValueError", "padding='same' needs stride=1 (got stride=2), as in PyTorch.")
        return
    assert _error(conv_output_size, 5, 3, padding=-1) == (
        "ValueError", "padding must be 0 or more, got -1.")
    assert _error(conv_output_size, 3, 7, padding=1) == ("ValueError", (
        "kernel_size=7 with dilation=1 spans 7 pixels, more than the padded input "
        "(3 + 2·1 = 5). Use a smaller kernel or dilation, or more padding."))
    assert _error(conv_output_size, 6, 3, dilation=3) == ("ValueError", (
        "kernel_size=3 with dilation=3 spans 7 pixels, more than the padded input "
        "(6 + 2·0 = 6). Use a smaller kernel or dilation, or more padding."))


def test_each_bad_pooling_argument_gets_its_own_message():
    pool = {"size": 5, "kernel_size": 3, "stride": 1, "padding": 0, "dilation": 1}
    for name in ("size", "kernel_size", "stride", "dilation"):
        assert _error(pool_output_size, **{**pool, name: 0}) == (
            "ValueError", f"{name} must be at least 1, got 0.")
    assert _error(pool_output_size, **{**pool, "padding": -1}) == (
        "ValueError", "padding must be 0 or more, got -1.")
    assert _error(pool_output_size, 8, 2, padding=2) == ("ValueError", (
        "padding=2 is more than half of kernel_size=2; PyTorch's pooling layers allow at most "
        "kernel_size // 2."))
    assert _error(pool_output_size, 1, 3) == ("ValueError", (
        "a pooling window of 3 (dilation 1) does not fit an input of 1 with padding 0; the "
        "output would be empty."))


def test_pool_output_size_matches_nn_maxpool2d():
    mismatches = []
    for size, k, s, p, d, ceil in itertools.product(range(1, 12), range(1, 6), range(1, 5),
                                                    range(0, 3), range(1, 3), (False, True)):
        try:
            real = F.max_pool2d(torch.zeros(1, 1, size, size), k, s, p, d, ceil_mode=ceil)
            real = real.shape[-1] or None
        except RuntimeError:
            real = None
        mine = _mine(pool_output_size, size, k, s, p, d, ceil)
        if mine != real:
            mismatches.append((size, k, s, p, d, ceil, mine, real))
    assert not mismatches, mismatches[:5]


def test_pool_output_size_course_example_and_default_stride():
    x = torch.zeros(1, 1, 5, 5)
    assert pool_output_size(5, 3, ceil_mode=True) == nn.MaxPool2d(3, ceil_mode=True)(x).shape[-1]
    assert pool_output_size(5, 3) == nn.MaxPool2d(3)(x).shape[-1]
    assert pool_output_size(32, 2) == 16
    with pytest.raises(ValueError, match="half of kernel_size"):
        pool_output_size(8, 2, padding=2)


# ------------------------------------------------------------------------ the picture
def _patches(ax, color):
    from matplotlib.colors import to_rgba

    want = to_rgba(color)[:3]
    return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_fill()
            and tuple(p.get_facecolor()[:3]) == want]


@pytest.mark.parametrize("size,k,s,p,d,pos", [(5, 3, 1, 0, 1, 0), (5, 3, 2, 1, 1, 4),
                                              (7, 3, 2, 1, 2, 3), (6, 2, 3, 0, 1, 100)])
def test_conv_picture_draws_the_window(size, k, s, p, d, pos):
    fig = conv_picture(size, k, s, p, d, position=pos)
    ax_in, ax_out = fig.axes
    out = conv_output_size(size, k, s, p, d)
    taps = _patches(ax_in, "tab:blue")
    assert len(taps) == k * k
    row, col = divmod(pos % (out * out), out)
    xs = sorted({t.get_x() for t in taps})
    ys = sorted({t.get_y() for t in taps})
    assert xs == [col * s + j * d for j in range(k)]
    assert ys == [row * s + i * d for i in range(k)]
    assert len(_patches(ax_out, "tab:orange")) == 1
    assert (out * out) + 1 == len([q for q in ax_out.patches if isinstance(q, Rectangle)])
    assert f"= {out}" in fig._suptitle.get_text()
    # the figure renders (catches layout errors)
    fig.canvas.draw()


def test_conv_picture_explains_a_misfit_instead_of_raising():
    fig = conv_picture(3, 5)
    texts = [" ".join(t.get_text().split()) for t in fig.axes[1].texts]
    assert any("more than the padded input (3 + 2·0 = 3)" in t for t in texts), texts


def test_conv_picture_writes_values_and_checks_their_shape():
    values = torch.arange(25).reshape(5, 5)
    fig = conv_picture(5, 3, values=values)
    assert {t.get_text() for t in fig.axes[0].texts} == {str(v) for v in range(25)}
    with pytest.raises(ValueError, match=r"expected \(5, 5\)") as info:
        conv_picture(5, 3, values=torch.zeros(4, 4))
    assert str(info.value).startswith("values ") and "(4, 4)" in str(info.value)  # names it
    with pytest.raises(ValueError) as info:
        conv_picture(5, 3, values=values, kernel=torch.zeros(2, 2))
    assert str(info.value).startswith("kernel ") and "(3, 3)" in str(info.value)


COURSE_INPUT = torch.tensor([[1, 2, 0, 3, 1], [0, 1, 2, 3, 1], [1, 2, 1, 0, 0],
                             [5, 2, 3, 1, 1], [2, 1, 0, 1, 1]], dtype=torch.float32)
COURSE_KERNEL = torch.tensor([[1, 2, 1], [0, 1, 0], [2, 1, 0]], dtype=torch.float32)


@pytest.mark.parametrize("s,p,d,pos", [(1, 0, 1, 0), (1, 0, 1, 8), (1, 1, 1, 1), (2, 1, 1, 4),
                                       (2, 1, 2, 1)])
def test_conv_picture_shows_kernel_products_and_their_sum(s, p, d, pos):
    fig = conv_picture(5, 3, s, p, d, position=pos, values=COURSE_INPUT, kernel=COURSE_KERNEL)
    ax_in, ax_kernel, ax_products, ax_out = fig.axes
    out = F.conv2d(COURSE_INPUT[None, None], COURSE_KERNEL[None, None], stride=s, padding=p,
                   dilation=d)[0, 0]
    row, col = divmod(pos % out.numel(), out.shape[-1])
    want = out[row, col].item()
    kernel_texts = [t.get_text() for t in ax_kernel.texts]
    assert kernel_texts == [f"{v:g}" for v in COURSE_KERNEL.flatten().tolist()]
    products = [float(t.get_text().split("= ")[-1]) for t in ax_products.texts]
    factors = [t.get_text().split("\n")[0].split("·") for t in ax_products.texts]
    assert [float(a) * float(b) for a, b in factors] == products
    assert sum(products) == want
    assert f"sum = {want:g}" in ax_products.get_title()
    assert [t.get_text() for t in ax_out.texts] == [f"{want:g}"]
    fig.canvas.draw()


def test_conv_picture_kernel_without_values_and_bad_kernel_shape():
    assert len(conv_picture(5, 3, kernel=COURSE_KERNEL).axes) == 3  # no numbers: no products
    with pytest.raises(ValueError, match=r"kernel has shape \(2, 2\), expected \(3, 3\)"):
        conv_picture(5, 3, kernel=torch.zeros(2, 2))


def test_conv_explorer_sliders_follow_the_output_size(capsys):
    box = conv_explorer(input_size=5, kernel_size=3)
    sliders = box.sliders
    assert sliders["position"].max == 3 * 3 - 1
    sliders["stride"].value = 2
    assert sliders["position"].max == 2 * 2 - 1
    sliders["kernel_size"].value = 7  # does not fit a 5×5 input without padding
    assert sliders["position"].max == 0
    sliders["padding"].value = 1
    assert sliders["position"].max == 0  # (5 + 2 - 7) // 2 + 1 = 1 → one cell
    sliders["kernel_size"].value = 1
    sliders["stride"].value = 1
    assert sliders["position"].max == (5 + 2) ** 2 - 1


def _rects(ax, **want):
    """The Rectangles of ``ax`` whose properties match ``want`` (facecolor compared as RGBA)."""
    from matplotlib.colors import to_rgba

    found = []
    for p in ax.patches:
        if not isinstance(p, Rectangle):
            continue
        if "facecolor" in want and tuple(p.get_facecolor()) != to_rgba(*want["facecolor"]):
            continue
        if "fill" in want and p.get_fill() != want["fill"]:
            continue
        found.append(p)
    return found


def _cells(rects):
    return sorted((p.get_x(), p.get_y(), p.get_width(), p.get_height()) for p in rects)


def _frame_of(ax):
    return (ax.get_xlim(), ax.get_ylim(), ax.get_aspect(), list(ax.get_xticks()),
            list(ax.get_yticks()), ax.get_title(), ax.title.get_fontsize())


def test_conv_picture_layout_colours_and_titles():
    from matplotlib.colors import to_rgba

    fig = conv_picture(5, 3, stride=2, padding=1, position=4, values=COURSE_INPUT,
                       kernel=COURSE_KERNEL)
    ax_in, ax_kernel, ax_products, ax_out = fig.axes
    assert tuple(fig.get_size_inches()) == pytest.approx((3 + 2.2 * 4, 4))
    assert list(ax_in.get_subplotspec().get_gridspec().get_width_ratios()) == [7, 3, 3, 4]
    # input: 7×7 grey padding cells, the 5×5 input inside them, the numbers in the input
    grey = _rects(ax_in, facecolor=("0.88",))
    assert _cells(grey) == sorted((c, r, 1, 1) for r in range(7) for c in range(7))
    assert {(tuple(p.get_edgecolor()), p.get_linestyle()) for p in grey} == {(to_rgba("0.6"),
                                                                             ":")}
    white = _rects(ax_in, facecolor=("white",))
    assert _cells(white) == sorted((c + 1, r + 1, 1, 1) for r in range(5) for c in range(5))
    assert {tuple(p.get_edgecolor()) for p in white} == {to_rgba("0.3")}
    assert sorted((t.get_position(), t.get_text()) for t in ax_in.texts) == sorted(
        ((c + 1.5, r + 1.5), f"{COURSE_INPUT[r, c].item():g}") for r in range(5) for c in range(5))
    assert {(t.get_fontsize(), t.get_ha(), t.get_va()) for t in ax_in.texts} == {
        (9, "center", "center")}
    # cell 4 of the 3×3 output = row 1, col 1: the window starts at (2, 2) of the padded input
    taps = _rects(ax_in, facecolor=("tab:blue", 0.45))
    assert _cells(taps) == sorted((2 + b, 2 + a, 1, 1) for a in range(3) for b in range(3))
    assert {tuple(p.get_edgecolor()) for p in taps} == {to_rgba("tab:blue", 0.45)}
    (outline,) = _rects(ax_in, fill=False)
    assert _cells([outline]) == [(2, 2, 3, 3)] and outline.get_linewidth() == 2
    assert tuple(outline.get_edgecolor()) == to_rgba("tab:blue")
    # kernel and products: 3×3 tables in their own colours
    for ax, colour in ((ax_kernel, "#fdebd0"), (ax_products, "#d6eaf8")):
        cells = _rects(ax, facecolor=(colour,))
        assert _cells(cells) == sorted((c, r, 1, 1) for r in range(3) for c in range(3))
        assert {tuple(p.get_edgecolor()) for p in cells} == {to_rgba("0.3")}
        assert sorted(t.get_position() for t in ax.texts) == sorted(
            (c + 0.5, r + 0.5) for r in range(3) for c in range(3))
        assert {(t.get_fontsize(), t.get_ha(), t.get_va()) for t in ax.texts} == {
            (8, "center", "center")}
    # output: 3×3 white cells, cell (1, 1) orange with the sum written in it
    assert _cells(_rects(ax_out, facecolor=("white",))) == sorted(
        (c, r, 1, 1) for r in range(3) for c in range(3))
    assert _cells(_rects(ax_out, facecolor=("tab:orange", 0.7))) == [(1, 1, 1, 1)]
    (total,) = ax_out.texts
    assert total.get_position() == (1.5, 1.5) and total.get_fontsize() == 9
    assert (total.get_ha(), total.get_va()) == ("center", "center")
    frames = [_frame_of(ax) for ax in fig.axes]
    want = F.conv2d(COURSE_INPUT[None, None], COURSE_KERNEL[None, None], stride=2,
                    padding=1)[0, 0, 1, 1].item()
    assert frames == [
        ((-0.1, n + 0.1), (n + 0.1, -0.1), 1.0, [], [], title, 10)
        for n, title in ((7, "input 5×5, padding 1"), (3, "kernel"),
                         (3, f"window ⊙ kernel, sum = {want:g}"), (3, "output 3×3, cell (1, 1)"))]
    assert fig._suptitle.get_text() == "H_out = ⌊(5 + 2·1 − 1·(3−1) − 1) / 2⌋ + 1 = 3"


def test_conv_picture_defaults_and_a_tiny_input():
    fig = conv_picture()  # 5×5 input, 3×3 kernel, stride 1, no padding, cell 0
    assert fig._suptitle.get_text() == "H_out = ⌊(5 + 2·0 − 1·(3−1) − 1) / 1⌋ + 1 = 3"
    assert _cells(_rects(fig.axes[1], facecolor=("tab:orange", 0.7))) == [(0, 0, 1, 1)]
    tiny = conv_picture(2, 1)
    assert list(tiny.axes[0].get_subplotspec().get_gridspec().get_width_ratios()) == [2, 2]


def test_conv_picture_misfit_says_why_in_red():
    import textwrap

    from matplotlib.colors import to_rgba

    reason = _error(conv_output_size, 3, 5)[1]
    fig = conv_picture(3, 5, values=torch.ones(3, 3), kernel=torch.ones(5, 5))
    assert [ax.axison for ax in fig.axes] == [True, False, False, False]
    (note,) = fig.axes[-1].texts
    assert note.get_text() == "no output:\n" + "\n".join(textwrap.wrap(reason, 34))
    assert note.get_position() == (0.5, 0.5) and note.get_transform() == fig.axes[-1].transAxes
    assert (note.get_ha(), note.get_va(), note.get_fontsize()) == ("center", "center", 9)
    assert note.get_color() == "firebrick" or to_rgba(note.get_color()) == to_rgba("firebrick")
    assert fig._suptitle.get_text() == "kernel 5, stride 1, dilation 1"


def test_conv_explorer_sliders_and_what_they_draw(monkeypatch):
    drawn = []
    real = conv_picture
    monkeypatch.setattr("course_utils.layers.conv_picture",
                        lambda **kw: drawn.append(kw) or real(**kw))
    box = conv_explorer(input_size=6, kernel_size=2, stride=3, padding=1, dilation=2)
    sliders = box.sliders
    rows = [[s.description for s in row.children] for row in box.children[:2]]
    assert rows == [["input", "kernel", "stride"], ["padding", "dilation", "output cell"]]
    assert [(k, s.value, s.min, s.max, s.continuous_update) for k, s in sliders.items()] == [
        ("input_size", 6, 1, 12, False), ("kernel_size", 2, 1, 7, False),
        ("stride", 3, 1, 4, False), ("padding", 1, 0, 3, False), ("dilation", 2, 1, 3, False),
        ("position", 0, 0, 2 * 2 - 1, False)]  # (6 + 2 − 3) // 3 + 1 = 2
    assert drawn[-1] == {"input_size": 6, "kernel_size": 2, "stride": 3, "padding": 1,
                         "dilation": 2, "position": 0}
    for name, value in (("position", 3), ("input_size", 7), ("dilation", 1)):
        sliders[name].value = value
        assert drawn[-1][name] == value
    sliders["stride"].value = 1  # more output cells: the position slider grows, then redraws
    n = (7 + 2 - 1 * (2 - 1) - 1) // 1 + 1  # 8
    assert sliders["position"].max == n * n - 1 and drawn[-1]["stride"] == 1
    default = conv_explorer()
    assert [s.value for s in default.sliders.values()] == [5, 3, 1, 0, 1, 0]


# ------------------------------------------------------------------------ images
def test_to_display_channels_keeps_each_image_together():
    x = torch.randn(4, 6, 30, 30)
    y = to_display_channels(x)
    assert y.shape == (8, 3, 30, 30)
    assert torch.equal(y[0], x[0, :3]) and torch.equal(y[1], x[0, 3:])
    assert torch.equal(y[7], x[3, 3:])
    scaled = to_display_channels(x, rescale=True)
    assert scaled.amin(dim=(1, 2, 3)).abs().max() < 1e-6
    assert (scaled.amax(dim=(1, 2, 3)) - 1).abs().max() < 1e-6
    small = to_display_channels(x * 0.01 + 5, rescale=True)  # a range far below 1
    assert torch.allclose(small, scaled, atol=1e-3)
    flat = to_display_channels(torch.full((1, 3, 2, 2), 7.0), rescale=True)
    assert torch.equal(flat, torch.zeros(1, 3, 2, 2))  # a constant image: 0, not NaN


def test_to_display_channels_errors():
    with pytest.raises(ValueError, match="5 channels cannot be split"):
        to_display_channels(torch.zeros(2, 5, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        to_display_channels(torch.zeros(6, 8, 8))


def test_to_display_channels_output_is_accepted_by_add_images(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from course_utils.tb import check_image

    out = nn.Conv2d(3, 6, 3)(torch.rand(2, 3, 32, 32))
    shown = to_display_channels(out, rescale=True)
    assert check_image(shown, "NCHW").n == 4
    with SummaryWriter(tmp_path) as writer:
        writer.add_images("output", shown, 0)
    assert list(tmp_path.glob("*tfevents*"))


# ------------------------------------------------------------------------ tables
@pytest.mark.parametrize("model_cls", [Tudui, TuduiPlain, TuduiBN])
def test_layer_shapes_agree_with_the_formula(model_cls):
    model = model_cls()
    shapes = layer_shapes(model, (2, 3, 32, 32))
    leaves = [m for m in model.modules() if not list(m.children())]
    assert [name for name, _ in shapes] == [type(m).__name__ for m in leaves]
    side = 32
    for module, (_, shape) in zip(leaves, shapes, strict=True):
        if isinstance(module, nn.Conv2d):
            side = conv_output_size(side, module.kernel_size[0], module.stride[0],
                                    module.padding[0], module.dilation[0])
            assert shape == (2, module.out_channels, side, side)
        elif isinstance(module, nn.MaxPool2d):
            side = pool_output_size(side, module.kernel_size, module.stride, module.padding,
                                    module.dilation, module.ceil_mode)
            assert shape[-2:] == (side, side)
    assert shapes[-1][1] == (2, 10)


def test_layer_table_prints_shapes_and_parameter_count(capsys):
    text = str(layer_table(Tudui(), (64, 3, 32, 32)))
    assert capsys.readouterr().out == ""  # a value to show, not a print
    assert "Input Shape" in text and "Output Shape" in text and "Param #" in text
    assert "[64, 3, 32, 32]" in text and "[64, 32, 32, 32]" in text and "[64, 1024]" in text
    assert "145,578" in text


def test_layer_shapes_reaches_deeply_nested_layers():
    deep = nn.Sequential(nn.Sequential(nn.Sequential(nn.Sequential(nn.Linear(2, 3)))))
    assert layer_shapes(deep, (1, 2)) == [("Linear", (1, 3))]
