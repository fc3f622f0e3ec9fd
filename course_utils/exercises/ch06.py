"""Chapter 6 (P17–P21): convolution by hand, output sizes, max pooling."""

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.exercises import Exercise, expect

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
    if isinstance(answer, torch.Tensor):
        expect(answer.numel() == 1,
               f"give one number, not a tensor of shape {tuple(answer.shape)}.")
        answer = answer.item()
    expect(isinstance(answer, (int, float)) and not isinstance(answer, bool),
           f"give a number, got {type(answer).__name__}.")
    return answer


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
    out = answer(x)
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
