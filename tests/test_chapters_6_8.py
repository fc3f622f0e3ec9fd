"""Chapters 6–8 (P17–P24): the course's conv and pool examples, the P21 last-batch failure on
real data, Tudui's shapes, the loss values the course printed, and a short optimization whose
loss goes down; chapter 6's notebook shows the course's own code (the reshape for
TensorBoard, the (1, 1, 1, -1) variant) and exercise 6.4 (corr2d) explains the typical
mistakes; chapters 7 and 8 draw and compare what they teach."""

from __future__ import annotations

import math
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.utils.data import DataLoader

from course_utils.data import cifar10, spread_subset
from course_utils.exercises import chapter
from course_utils.layers import to_display_channels
from course_utils.models import MODELS, Tudui, TuduiPlain, build_model, count_parameters

ROOT = Path(__file__).resolve().parent.parent
IMAGE = torch.tensor([[1, 2, 0, 3, 1],
                      [0, 1, 2, 3, 1],
                      [1, 2, 1, 0, 0],
                      [5, 2, 3, 1, 1],
                      [2, 1, 0, 1, 1]], dtype=torch.float32).reshape(1, 1, 5, 5)  # fmt: skip
KERNEL = torch.tensor([[1, 2, 1],
                       [0, 1, 0],
                       [2, 1, 0]], dtype=torch.float32).reshape(1, 1, 3, 3)  # fmt: skip


def _naive_conv(image, kernel, stride, padding):
    """Textbook loops over a zero-padded list of lists (independent of torch's conv)."""
    rows = [[0.0] * (5 + 2 * padding) for _ in range(5 + 2 * padding)]
    for r in range(5):
        for c in range(5):
            rows[r + padding][c + padding] = float(image[0, 0, r, c])
    n = (len(rows) - 3) // stride + 1
    return [[sum(rows[i * stride + a][j * stride + b] * float(kernel[0, 0, a, b])
                 for a in range(3) for b in range(3)) for j in range(n)] for i in range(n)]


@pytest.fixture(autouse=True)
def one_thread():
    """These tiny workloads run fastest on one thread (and steadily on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------ P17–P19
def test_p17_conv2d_stride1_prints_what_the_course_printed():
    out = F.conv2d(IMAGE, KERNEL, stride=1)
    assert out.squeeze().tolist() == [[10, 12, 12], [18, 16, 16], [13, 9, 3]]


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 0), (1, 1), (2, 1)])
def test_p17_conv2d_matches_the_definition(stride, padding):
    out = F.conv2d(IMAGE, KERNEL, stride=stride, padding=padding)
    assert out.squeeze(0).squeeze(0).tolist() == _naive_conv(IMAGE, KERNEL, stride, padding)


def test_p18_out_channels_are_one_output_per_kernel():
    conv = nn.Conv2d(1, 2, 3, bias=False)
    with torch.no_grad():
        conv.weight[0, 0] = KERNEL[0, 0]
        conv.weight[1, 0] = KERNEL[0, 0].T
    out = conv(IMAGE)
    assert out.shape == (1, 2, 3, 3)
    assert torch.equal(out[:, :1], F.conv2d(IMAGE, KERNEL))
    assert torch.equal(out[:, 1:], F.conv2d(IMAGE, KERNEL.transpose(2, 3)))


def test_p19_maxpool_ceil_mode_as_in_the_course():
    assert nn.MaxPool2d(3, ceil_mode=True)(IMAGE).squeeze().tolist() == [[2, 3], [5, 1]]
    assert nn.MaxPool2d(3, ceil_mode=False)(IMAGE).squeeze().tolist() == 2


def test_p19_integer_input_is_refused_by_layers_with_weights():
    with pytest.raises(RuntimeError):
        nn.Conv2d(1, 1, 3)(IMAGE.long())


def test_p20_relu_inplace_changes_the_input_only_when_asked():
    x = torch.tensor([-1.0, 2.0])
    nn.ReLU(inplace=False)(x)
    assert x.tolist() == [-1.0, 2.0]
    out = nn.ReLU(inplace=True)(x)
    assert x.tolist() == [0.0, 2.0] and out is x


# ------------------------------------------------------------------------ P21
@pytest.fixture
def test_images(cache_dir):
    ds = cifar10(train=False, transform=torchvision.transforms.ToTensor(), download=False,
                 verbose=False)
    return spread_subset(ds, 200)


def test_p21_linear_on_a_flattened_batch_fails_on_the_last_batch(test_images):
    n = len(test_images)
    assert n % 64, "the sample must leave a smaller last batch"
    linear = nn.Linear(64 * 3 * 32 * 32, 10)
    batches = list(DataLoader(test_images, batch_size=64))
    for imgs, _ in batches[:-1]:
        assert linear(torch.flatten(imgs)).shape == (10,)
    last = batches[-1][0]
    assert len(last) == n % 64
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        linear(torch.flatten(last))
    kept = list(DataLoader(test_images, batch_size=64, drop_last=True))
    assert len(kept) == n // 64 and all(len(imgs) == 64 for imgs, _ in kept)
    per_image = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    assert per_image(last).shape == (n % 64, 10)


# ------------------------------------------------------------------------ P22
def test_p22_tudui_shapes_and_both_forms_agree():
    x = torch.ones(64, 3, 32, 32)
    seq, plain = Tudui(), TuduiPlain()
    assert seq(x).shape == (64, 10) and plain(x).shape == (64, 10)
    assert count_parameters(seq) == count_parameters(plain) == 145_578
    with torch.no_grad():
        for p_plain, p_seq in zip(plain.parameters(), seq.parameters(), strict=True):
            p_plain.copy_(p_seq)
    x = torch.randn(4, 3, 32, 32)
    assert torch.allclose(plain(x), seq(x), atol=1e-6)
    assert not any(isinstance(m, nn.ReLU) for m in seq.modules())  # faithful: no ReLU
    assert MODELS["tudui-plain"] is TuduiPlain
    assert isinstance(build_model("tudui-plain"), TuduiPlain)


# ------------------------------------------------------------------------ P23
def test_p23_loss_values_printed_in_the_course():
    inputs = torch.tensor([1.0, 2.0, 3.0]).reshape(1, 1, 1, 3)
    targets = torch.tensor([1.0, 2.0, 5.0]).reshape(1, 1, 1, 3)
    assert nn.L1Loss()(inputs, targets).item() == pytest.approx(0.6667, abs=1e-4)
    assert nn.L1Loss(reduction="sum")(inputs, targets).item() == 2.0
    assert nn.MSELoss()(inputs, targets).item() == pytest.approx(1.3333, abs=1e-4)
    x, y = torch.tensor([[0.1, 0.2, 0.3]]), torch.tensor([1])
    ce = nn.CrossEntropyLoss()(x, y).item()
    assert ce == pytest.approx(1.1019, abs=1e-4)
    assert ce == pytest.approx(-0.2 + math.log(sum(math.exp(v) for v in (0.1, 0.2, 0.3))))


def test_p23_backward_fills_grad_and_accumulates():
    torch.manual_seed(0)
    model = Tudui()
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    conv1 = model.model[0]
    assert conv1.weight.grad is None
    nn.CrossEntropyLoss()(model(x), y).backward()
    first = conv1.weight.grad.clone()
    assert first.shape == conv1.weight.shape and first.abs().sum() > 0
    nn.CrossEntropyLoss()(model(x), y).backward()
    assert torch.allclose(conv1.weight.grad, 2 * first)


# ------------------------------------------------------------------------ P24
def test_p24_course_loop_running_loss_decreases(cache_dir):
    ds = cifar10(train=False, transform=torchvision.transforms.ToTensor(), download=False,
                 verbose=False)
    loader = DataLoader(spread_subset(ds, 32), batch_size=1)
    torch.manual_seed(0)
    model = Tudui()
    loss_fn = nn.CrossEntropyLoss()
    optim = torch.optim.SGD(model.parameters(), lr=0.01)
    epoch_losses = []
    for _ in range(3):
        running = 0.0
        for imgs, targets in loader:
            result = loss_fn(model(imgs), targets)
            optim.zero_grad()
            result.backward()
            optim.step()
            running += result.item()
        epoch_losses.append(running)
    assert all(b < a for a, b in zip(epoch_losses, epoch_losses[1:], strict=False)), epoch_losses


def test_p24_learning_rate_too_large_diverges(cache_dir):
    """Full-batch gradient descent from one seeded start: a small rate creeps down, a good
    one goes down 20-50x faster, a far too large one blows up (seeds 0-11, 1 and 2 threads)."""
    from course_utils.data import as_tensors

    images, labels = as_tensors(cifar10(train=True, download=False, verbose=False))
    keep = torch.linspace(0, len(labels) - 1, 64).long()
    x, y = images[keep].float() / 255, labels[keep]

    def fresh():
        torch.manual_seed(0)  # every learning rate starts from the same weights
        return Tudui()

    def final_loss(lr):
        model = fresh()
        optim = torch.optim.SGD(model.parameters(), lr=lr)
        for _ in range(20):  # full-batch steps: no minibatch noise to hide the effect
            loss = F.cross_entropy(model(x), y)
            optim.zero_grad()
            loss.backward()
            optim.step()
        with torch.no_grad():
            return F.cross_entropy(model(x), y).item()

    with torch.no_grad():
        start = F.cross_entropy(fresh()(x), y).item()
    small, good, huge = final_loss(0.001), final_loss(0.05), final_loss(0.5)
    assert small < start and start - good > 5 * (start - small), (start, small, good)
    assert not math.isfinite(huge) or huge > start


def _cells(number):
    path = next((ROOT / "notebooks").glob(f"{number:02d}_*.ipynb"))
    return nbformat.read(path, as_version=4).cells


def _code(number):
    return "\n".join(c.source for c in _cells(number) if c.cell_type == "code")


# ------------------------------------------------------------ chapter 6's notebook, 6.4
@pytest.fixture(scope="module")
def ch6_nb():
    return nbformat.read(ROOT / "notebooks" / "06_conv_pool_activation.ipynb", as_version=4)


@pytest.fixture(scope="module")
def ch6_text(ch6_nb):
    return "\n".join(c.source for c in ch6_nb.cells)


def test_the_courses_code_is_written_out(ch6_text):
    for needle in ("torch.reshape(output, (-1, 3, 30, 30))", "torch.reshape(imgs, (1, 1, 1, -1))",
                   "CIFAR10(root=root, train=False, transform=torchvision.transforms.ToTensor()",
                   "https://github.com/vdumoulin/conv_arithmetic", "groups=", "bias=False",
                   "padding_mode=", "kernel=kernel[0, 0]", "def corr2d(X, K):"):
        assert needle in ch6_text, needle


def test_fixed_wording(ch6_text):
    assert "正则化层" not in ch6_text and "normalization 归一化层" in ch6_text
    assert "8 here" not in ch6_text and "n % 64 or 64" in ch6_text
    assert "as if it were the output" not in ch6_text  # the P19 comment lists both prints in order
    assert "lists both prints" in ch6_text


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


# ----------------------------------------------------------- chapters 7 and 8's notebooks
def test_chapter_7_draws_the_shapes_and_calls_torchinfo():
    code = _code(7)
    assert "summary(tudui, input_size=(64, 3, 32, 32))" in code
    assert "for layer in tudui.model1:" in code and "Rectangle(" in code


def test_chapter_8_compares_learning_rates_on_one_axis_and_links_the_docs():
    cells = _cells(8)
    plot = next(c.source for c in cells if "for lr, history in histories.items()" in c.source)
    assert plot.count("plt.subplots(") == 1 and "ax.legend()" in plot
    text = "\n".join(c.source for c in cells)
    assert "https://pytorch.org/docs/stable/optim.html" in text
    assert "torch.nn.CrossEntropyLoss.html" in text
