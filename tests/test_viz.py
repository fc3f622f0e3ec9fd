"""course_utils.viz: describe, image grids, and the transforms playground on real photos."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from course_utils import data, viz

DOG = data.demo_image("dog")  # 456 x 336 RGB PNG
GIF = data.HYMENOPTERA_SAMPLE / "train" / "ants" / "imageNotFound.gif"


def test_describe_pil_tensor_array_and_other():
    img = Image.open(DOG)
    assert viz.describe(img) == f"PIL PngImageFile mode RGB size (W={img.width}, H={img.height})"
    t = transforms.ToTensor()(img)
    text = viz.describe(t)
    assert text.startswith(f"Tensor float32 shape (3, {img.height}, {img.width}) range [")
    lo, hi = (float(v) for v in text.split("[")[1].rstrip("]").split(","))
    assert lo == pytest.approx(t.min().item(), abs=1e-3)
    assert hi == pytest.approx(t.max().item(), abs=1e-3)
    assert viz.describe(np.zeros((2, 3), np.uint8)) == "ndarray uint8 shape (2, 3) range [0, 0]"
    assert viz.describe(torch.empty(0)).endswith("(empty)")
    assert viz.describe(5) == "int: 5"


def test_to_hwc_layouts():
    img = Image.open(DOG)
    t = transforms.ToTensor()(img)
    arr = viz.to_hwc(t)
    assert arr.shape == (img.height, img.width, 3)
    np.testing.assert_allclose(arr, t.permute(1, 2, 0).numpy())
    assert viz.to_hwc(img).shape == (img.height, img.width, 3)
    assert viz.to_hwc(Image.open(GIF)).shape[2] == 3  # palette GIF drawn as RGB
    assert viz.to_hwc(torch.rand(1, 5, 6)).shape == (5, 6)  # one channel → grey
    out_of_range = viz.to_hwc(torch.full((3, 2, 2), 2.0))
    assert out_of_range.max() == 1.0  # floats clipped for drawing
    with pytest.raises(ValueError, match="cannot draw"):
        viz.to_hwc(torch.rand(2, 5, 5, 5))


def test_show_images_grid_titles_and_png(cache_dir):
    ds = data.cifar10(train=False, verbose=False)
    imgs = [ds[i][0] for i in range(10)]
    titles = [ds.classes[ds[i][1]] for i in range(10)]
    fig = viz.show_images(imgs, titles=titles, ncols=4)
    assert len(fig.axes) == 12  # 3 rows of 4, the last two blank
    drawn = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in drawn] == titles
    np.testing.assert_array_equal(drawn[0].images[0].get_array(), np.asarray(imgs[0]))
    assert fig._repr_png_().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="2 titles for 10 images"):
        viz.show_images(imgs, titles=["a", "b"])
    with pytest.raises(ValueError, match="no images"):
        viz.show_images([])


def test_one_figure_style_for_viz_and_tb(tmp_path, monkeypatch):
    from torch.utils.tensorboard import SummaryWriter

    from course_utils import tb

    fig = viz.new_figure(4, 3)
    ax = viz.style_axes(fig.subplots(), title="loss", xlabel="step", ylabel="value")
    assert ax.get_title() == "loss" and ax.get_xlabel() == "step" and ax.get_ylabel() == "value"
    assert ax.title.get_fontsize() == viz.STYLE["title_size"]
    assert any(line.get_visible() for line in ax.get_xgridlines())
    monkeypatch.setitem(viz.STYLE, "dpi", 40)  # the PNG a notebook shows follows STYLE
    assert Image.open(io.BytesIO(fig._repr_png_())).size == (4 * 40, 3 * 40)
    with SummaryWriter(str(tmp_path)) as writer:
        writer.add_scalar("loss", 1.0, 0)
    [panel] = tb.plot_scalars(tmp_path).axes
    grid = viz.show_images([torch.zeros(3, 4, 4)], titles=["x"]).axes[0]
    assert panel.title.get_fontsize() == grid.title.get_fontsize() == viz.STYLE["title_size"]
    assert type(tb.plot_scalars(tmp_path)) is viz.Figure


def test_show_batch_titles_by_class(cache_dir):
    ds = data.cifar10(train=False, transform=transforms.ToTensor(), verbose=False)
    imgs = torch.stack([ds[i][0] for i in range(0, 200, 20)])
    targets = torch.tensor([ds[i][1] for i in range(0, 200, 20)])
    fig = viz.show_batch(imgs, targets, ds.classes, n=6)
    assert [ax.get_title() for ax in fig.axes if ax.images] == [
        ds.classes[int(t)] for t in targets[:6]
    ]


def test_playground_transform_resize_int_keeps_aspect_tuple_does_not():
    img = Image.open(DOG)
    keep = viz.playground_transform(resize=100)(img)
    squash = viz.playground_transform(resize=100, keep_aspect=False)(img)
    assert keep.shape[1] == 100  # the shorter side (height) becomes 100
    assert keep.shape[2] / keep.shape[1] == pytest.approx(img.width / img.height, rel=0.02)
    assert tuple(squash.shape) == (3, 100, 100)
    steps = [type(t).__name__ for t in viz.playground_transform(crop=50, flip=True,
                                                                 normalize=True).transforms]
    assert steps == ["Resize", "RandomCrop", "RandomHorizontalFlip", "ToTensor", "Normalize"]


def test_playground_render_matches_torchvision_and_is_reproducible():
    img = Image.open(DOG)
    pg = viz.TransformsPlayground(img)
    result = pg.render(resize=120, crop=80, normalize=True, mean=0.4, std=0.2, seed=3)
    assert tuple(result.output.shape) == (3, 80, 80)
    torch.manual_seed(3)
    by_hand = transforms.Compose([transforms.Resize(120), transforms.RandomCrop(80),
                                  transforms.ToTensor()])(img)
    torch.testing.assert_close(result.output, (by_hand - 0.4) / 0.2)
    assert "Normalize" in result.text and "(3, 80, 80)" in result.text
    again = pg.render(resize=120, crop=80, normalize=True, mean=0.4, std=0.2, seed=3)
    torch.testing.assert_close(again.output, result.output)
    other = pg.render(resize=120, crop=80, seed=4)
    assert not torch.equal(other.output, by_hand)  # another seed, another crop
    flipped = pg.render(resize=120, flip=True)
    plain = pg.render(resize=120)
    torch.testing.assert_close(flipped.output, plain.output.flip(-1))


def test_playground_crop_too_big_gives_a_message_not_an_exception():
    pg = viz.TransformsPlayground(Image.open(DOG))
    result = pg.render(resize=64, crop=100)
    assert result.output is None and result.figure is None
    assert "RandomCrop(100) does not fit" in result.text
    fits = pg.render(resize=64, crop=64)  # the shorter side is exactly 64
    assert tuple(fits.output.shape) == (3, 64, 64)


def test_playground_widget_changes_call_the_callback():
    pg = viz.TransformsPlayground(Image.open(DOG), resize=96)
    assert pg.values()["resize"] == 96
    pg.controls["crop"].value = 64
    assert tuple(pg.last.output.shape) == (3, 64, 64)
    pg.controls["keep_aspect"].value = False
    pg.controls["resize"].value = 72
    assert "Resize(size=(72, 72)" in pg.last.text
    assert tuple(pg.last.output.shape) == (3, 64, 64)
    assert pg.widget.children  # a displayable box
