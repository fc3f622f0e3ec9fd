"""Chapter 6 (P17–P21): convolution by hand, output sizes, max pooling."""

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.exercises import Exercise, _short, as_number, call, expect
from course_utils.exercises.i18n import N_

#: The course's 5×5 input and 3×3 kernel (P17).
INPUT = torch.tensor([[1, 2, 0, 3, 1],
                      [0, 1, 2, 3, 1],
                      [1, 2, 1, 0, 0],
                      [5, 2, 3, 1, 1],
                      [2, 1, 0, 1, 1]])  # fmt: skip
KERNEL = torch.tensor([[1, 2, 1],
                       [0, 1, 0],
                       [2, 1, 0]])  # fmt: skip


def _as_number(answer):
    return as_number(answer)


def _check_q1(answer):
    value = _as_number(answer)
    x, k = INPUT.reshape(1, 1, 5, 5), KERNEL.reshape(1, 1, 3, 3)
    expected = F.conv2d(x, k, stride=1, padding=1)[0, 0, 0, 1].item()
    unpadded = F.conv2d(x, k, stride=1)[0, 0, 0, 1].item()
    expect(value != unpadded, f"{value} is output[0][1] *without* padding — with padding=1 the "
           "window moves one cell up and one to the left.")
    expect(value == expected, f"{value} is not it. Place the kernel's centre on input[0][1]; the "
           "kernel's top row lies on the zero padding, so only its lower two rows count.")


q1 = Exercise(
    "6.1",
    "With padding=1 and stride=1, compute output[0][1] of F.conv2d(input, kernel) BY HAND "
    "(the course's 5×5 input and 3×3 kernel) and assign the number to `answer`.",
    _check_q1,
    hint_text="With padding=1 the kernel's centre sits on input[0][1]. Its top row lies on the "
    "zeros; multiply the other six kernel entries with the input cells under them and add up.",
    solution_code="""
        # kernel rows 1–2 lie on input rows 0–1, columns 0–2:
        # 0*1 + 1*2 + 0*0  +  2*0 + 1*1 + 0*2
        answer = 0 * 1 + 1 * 2 + 0 * 0 + 2 * 0 + 1 * 1 + 0 * 2
    """,
    wrong=[12, 10, 4, "3"],
)


def _check_q2(answer):
    value = _as_number(answer)
    layer = nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1, dilation=2)
    real = layer(torch.zeros(1, 3, 28, 28)).shape[-1]
    expect(value != 14, "14 forgets the dilation: a 3×3 kernel with dilation=2 reaches 5 pixels.")
    expect(value == real, f"{value} is off. Fill in H_out = ⌊(H + 2p − d(k−1) − 1)/s⌋ + 1 with "
           "H=28, k=3, s=2, p=1, d=2.")


q2 = Exercise(
    "6.2",
    "A 28×28 image goes through nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1, dilation=2). "
    "What is the output's height? Work it out with the formula, assign it to `answer`.",
    _check_q2,
    hint_text="H_out = ⌊(H + 2·padding − dilation·(kernel_size − 1) − 1) / stride⌋ + 1.",
    solution_code="""
        answer = (28 + 2 * 1 - 2 * (3 - 1) - 1) // 2 + 1
    """,
    wrong=[14, 13.5, 12, 28],
)


def _check_q3(answer):
    expect(isinstance(answer, nn.Module), f"`answer` should be a layer (an nn.Module), got "
           f"{type(answer).__name__}.")
    x = INPUT.reshape(1, 1, 5, 5).float()
    out = call("answer(input)", answer, x)
    expect(isinstance(out, torch.Tensor) and out.shape == (1, 1, 2, 2),
           f"the output should have shape (1, 1, 2, 2), got {tuple(getattr(out, 'shape', ()))}. "
           "Windows of 3 with stride 3 fit once in 5 — unless partial windows are kept.")
    expected = F.max_pool2d(x, 3, ceil_mode=True)
    expect(torch.equal(out, expected), f"the numbers are off: you give {out.flatten().tolist()}, "
           "each cell should be the maximum of its (possibly partial) 3×3 window.")


q3 = Exercise(
    "6.3",
    "Make `answer` a pooling layer that turns the course's 5×5 input (as float, shape "
    "(1, 1, 5, 5)) into the 2×2 output [[2, 3], [5, 1]].",
    _check_q3,
    hint_text="nn.MaxPool2d with kernel_size=3; stride defaults to the kernel size. Which option "
    "keeps the windows that stick out over the edge?",
    solution_code="""
        from torch import nn
        answer = nn.MaxPool2d(kernel_size=3, ceil_mode=True)
    """,
    wrong=["nn.MaxPool2d(3, ceil_mode=True)", nn.MaxPool2d(3), nn.MaxPool2d(2),
           nn.AvgPool2d(3, ceil_mode=True)],
)


# ----------------------------------------------------------------------------- 6.4
#: (input height, input width, kernel height, kernel width) — the checker's own sizes.
_SIZES = [(5, 5, 3, 3), (4, 7, 2, 3), (6, 3, 1, 1), (8, 8, 5, 2), (3, 3, 3, 3), (10, 6, 4, 4)]


def _check_q4(answer):
    expect(callable(answer) and not isinstance(answer, type),
           f"`answer` should be your function corr2d (no parentheses), got {_short(answer)}.")
    course = call(N_("corr2d(the course's 5×5 input, 3×3 kernel)"), answer, INPUT.float(),
                  KERNEL.float())
    expect(isinstance(course, torch.Tensor),
           f"corr2d should return a tensor, got {type(course).__name__}.")
    gen = torch.Generator().manual_seed(6)
    cases = [(INPUT.float(), KERNEL.float())] + [
        (torch.randn(h, w, generator=gen), torch.randn(kh, kw, generator=gen))
        for h, w, kh, kw in _SIZES]
    for x, k in cases:
        want = F.conv2d(x[None, None], k[None, None])[0, 0]
        got = call(N_(f"corr2d(a {tuple(x.shape)} input, a {tuple(k.shape)} kernel)"), answer,
                   x.clone(), k.clone())
        expect(isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(want.shape),
               f"for a {tuple(x.shape)} input and a {tuple(k.shape)} kernel the output should "
               f"be {tuple(want.shape)}, got {tuple(getattr(got, 'shape', ()))}: there are "
               "(H − kH + 1) × (W − kW + 1) window positions.")
        flipped = F.conv2d(x[None, None], k.flip(0, 1)[None, None])[0, 0]
        expect(not (torch.allclose(got.float(), flipped, atol=1e-4)
                    and not torch.allclose(want, flipped, atol=1e-4)),
               "you flipped the kernel — that is the mathematicians' convolution. F.conv2d "
               "(like every deep-learning 'convolution') multiplies the window with the "
               "kernel as it is: a cross-correlation.")
        expect(torch.allclose(got.float(), want, atol=1e-4),
               f"for a {tuple(x.shape)} input and a {tuple(k.shape)} kernel your output differs "
               f"from F.conv2d by up to {(got.float() - want).abs().max():.3g}. Each output "
               "cell is (window * K).sum() for the window starting at that cell.")


def _flipped_kernel(x, k):
    kh, kw = k.shape
    k = k.flip(0, 1)
    return torch.stack([torch.stack([(x[i:i + kh, j:j + kw] * k).sum()
                                     for j in range(x.shape[1] - kw + 1)])
                        for i in range(x.shape[0] - kh + 1)])


def _one_row_short(x, k):
    kh, kw = k.shape
    out = torch.zeros(x.shape[0] - kh, x.shape[1] - kw + 1)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = (x[i:i + kh, j:j + kw] * k).sum()
    return out


def _square_kernels_only(x, k):
    n = k.shape[0]
    out = torch.zeros(x.shape[0] - n + 1, x.shape[1] - n + 1)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = (x[i:i + n, j:j + n] * k[:n, :n]).sum()
    return out


q4 = Exercise(
    "6.4",
    "Write `corr2d(X, K)` yourself, with two loops: for a 2-D input `X` (H × W) and a 2-D "
    "kernel `K` (kH × kW), return the (H − kH + 1) × (W − kW + 1) tensor whose cell (i, j) is "
    "the sum of the element-wise product of `K` with the window of `X` that starts at "
    "(i, j) — stride 1, no padding, what `F.conv2d` computes. The checker compares it with "
    "`F.conv2d` on the course's 5×5 example and on random inputs and kernels of several "
    "sizes (not all square). Assign the function to `answer`.",
    _check_q4,
    hint_text="out = torch.zeros(H - kH + 1, W - kW + 1); for i in range(out.shape[0]): for j in "
    "range(out.shape[1]): out[i, j] = (X[i:i + kH, j:j + kW] * K).sum().",
    solution_code="""
        import torch

        def corr2d(X, K):
            kh, kw = K.shape
            out = torch.zeros(X.shape[0] - kh + 1, X.shape[1] - kw + 1)
            for i in range(out.shape[0]):
                for j in range(out.shape[1]):
                    out[i, j] = (X[i:i + kh, j:j + kw] * K).sum()
            return out

        answer = corr2d
    """,
    wrong=[_flipped_kernel, _one_row_short, _square_kernels_only, F.conv2d],
)
