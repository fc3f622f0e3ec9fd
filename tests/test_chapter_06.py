"""Chapter 6 (P17–P21): the notebook asks every question above its answer cell and shows the
course's own code (the reshape for TensorBoard, the (1, 1, 1, -1) variant); the facts it
prints hold; exercise 6.4 (corr2d) explains the typical mistakes."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.exercises import chapter
from course_utils.layers import to_display_channels

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "06_conv_pool_activation.ipynb"


@pytest.fixture(scope="module")
def nb():
    return nbformat.read(NOTEBOOK, as_version=4)


@pytest.fixture(scope="module")
def text(nb):
    return "\n".join(c.source for c in nb.cells)


def test_every_question_is_written_above_its_answer_cell(nb):
    cells = nb.cells
    for key, exercise in vars(chapter(6)).items():
        checks = [i for i, c in enumerate(cells)
                  if c.cell_type == "code" and f"ex.{key}.check(answer)" in c.source]
        assert len(checks) == 1, f"ex.{key} is checked {len(checks)} times"
        above = cells[checks[0] - 1]
        assert above.cell_type == "markdown"
        assert " ".join(exercise.prompt.split()) in " ".join(above.source.split()), key
    assert ".question()" not in "\n".join(c.source for c in cells)


def test_the_courses_code_is_written_out(text):
    for needle in ("torch.reshape(output, (-1, 3, 30, 30))", "torch.reshape(imgs, (1, 1, 1, -1))",
                   "CIFAR10(root=root, train=False, transform=torchvision.transforms.ToTensor()",
                   "https://github.com/vdumoulin/conv_arithmetic", "groups=", "bias=False",
                   "padding_mode=", "kernel=kernel[0, 0]", "def corr2d(X, K):"):
        assert needle in text, needle


def test_fixed_wording(text):
    assert "正则化层" not in text and "normalization 归一化层" in text
    assert "8 here" not in text and "n % 64 or 64" in text
    assert "as if it were the output" not in text  # the P19 comment lists both prints in order
    assert "lists both prints" in text


def test_reshape_to_three_channels_is_what_to_display_channels_does():
    output = nn.Conv2d(3, 6, 3)(torch.rand(5, 3, 32, 32)).detach()
    shown = torch.reshape(output, (-1, 3, 30, 30))
    assert shown.shape == (10, 3, 30, 30)
    assert torch.equal(shown, to_display_channels(output))
    assert torch.equal(shown[1], output[0, 3:])  # image 0's second three maps


def test_the_four_d_row_variant_gives_one_prediction_per_batch():
    linear = nn.Linear(196608, 10)
    imgs = torch.rand(64, 3, 32, 32)
    assert linear(torch.reshape(imgs, (1, 1, 1, -1))).shape == (1, 1, 1, 10)
    assert torch.allclose(linear(torch.reshape(imgs, (1, 1, 1, -1))).flatten(),
                          linear(torch.flatten(imgs)))


def test_padding_modes_differ_only_at_the_border():
    image = torch.arange(25.0).reshape(1, 1, 5, 5)
    outs = {}
    for mode in ("zeros", "reflect", "replicate", "circular"):
        layer = nn.Conv2d(1, 1, 3, padding=1, padding_mode=mode, bias=False)
        nn.init.ones_(layer.weight)
        outs[mode] = layer(image).detach()
    for mode, out in outs.items():
        assert torch.equal(out[..., 1:-1, 1:-1], outs["zeros"][..., 1:-1, 1:-1]), mode
    assert len({tuple(o[0, 0, 0].tolist()) for o in outs.values()}) == 4


def _feedback(answer, capsys) -> str:
    assert not chapter(6).q4.check(answer)
    return capsys.readouterr().out


def test_ex4_true_convolution_is_explained(capsys):
    def flipped(x, k):
        return F.conv2d(x[None, None], k.flip(0, 1)[None, None])[0, 0]

    assert "cross-correlation" in _feedback(flipped, capsys)


def test_ex4_wrong_output_size_is_explained(capsys):
    def too_small(x, k):
        return torch.zeros(x.shape[0] - k.shape[0], x.shape[1] - k.shape[1])

    assert "window positions" in _feedback(too_small, capsys)


def test_ex4_another_correct_loop_passes():
    def corr2d(x, k):  # another correct way: accumulate over the kernel's cells
        kh, kw = k.shape
        h, w = x.shape[0] - kh + 1, x.shape[1] - kw + 1
        out = torch.zeros(h, w)
        for a in range(kh):
            for b in range(kw):
                out += k[a, b] * x[a:a + h, b:b + w]
        return out

    assert chapter(6).q4.check(corr2d)
