"""Chapter 10 (P27–P31): accuracy as a float, train/eval modes, the summed test loss."""

import math

import torch
from torch import nn

from course_utils.exercises import Exercise, expect


def _check_q1(fn):
    expect(callable(fn), "`answer` should be a function accuracy(outputs, targets).")
    g = torch.Generator().manual_seed(10)
    for n in (1, 7, 64):
        outputs = torch.randn(n, 10, generator=g)
        targets = torch.randint(0, 10, (n,), generator=g)
        targets[: n // 2] = outputs[: n // 2].argmax(1)
        expected = sum(int(max(range(10), key=lambda j, r=row: r[j]) == t)
                       for row, t in zip(outputs.tolist(), targets.tolist(), strict=True)) / n
        got = fn(outputs, targets)
        expect(not isinstance(got, torch.Tensor), "it returns a tensor, as the original printed "
               "(tensor(0.4500)); turn it into a Python float with .item() or float().")
        expect(isinstance(got, float), f"return a float, got {type(got).__name__}.")
        expect(math.isclose(got, expected, abs_tol=1e-6),
               f"for {n} images it gives {got:.4f} but the accuracy is {expected:.4f} — compare "
               "outputs.argmax(1) (the class of each row) with targets.")


q1 = Exercise(
    "10.1",
    "Write a function accuracy(outputs, targets) → Python float: outputs are logits (N, 10), "
    "targets class indices (N,). Assign the function to `answer`.",
    _check_q1,
    hint_text="(outputs.argmax(1) == targets).sum() counts the right ones; divide by len(targets) "
              "and call .item().",
    solution_code="""
        def accuracy(outputs, targets):
            return (outputs.argmax(1) == targets).float().mean().item()
        answer = accuracy
    """,
    wrong=[lambda o, t: (o.argmax(1) == t).sum() / len(t),
           lambda o, t: (o.argmax(0)[: len(t)] == t).float().mean().item(),
           lambda o, t: float((o.argmax(1) == t).sum()),
           0.5],
)

CANDIDATES = {"Linear": lambda: nn.Linear(8, 8), "ReLU": nn.ReLU,
              "Dropout": lambda: nn.Dropout(0.5), "BatchNorm1d": lambda: nn.BatchNorm1d(8),
              "Flatten": nn.Flatten}


def _mode_dependent() -> set[str]:
    """Find out by experiment which layers give different outputs in train() and eval()."""
    found = set()
    for name, make in CANDIDATES.items():
        torch.manual_seed(0)
        layer, x = make(), torch.randn(16, 8) + 3
        with torch.no_grad():
            a = layer.train()(x)
            b = layer.eval()(x)
        if not torch.allclose(a, b):
            found.add(name)
    return found


def _check_q2(answer):
    expect(isinstance(answer, (set, list, tuple)), "`answer` should be a set of layer names.")
    names = set(answer)
    unknown = names - set(CANDIDATES)
    expect(not unknown, f"{sorted(unknown)} are not among {sorted(CANDIDATES)}.")
    expected = _mode_dependent()
    missing, extra = expected - names, names - expected
    expect(not missing, f"{sorted(missing)} also behave differently — try it: the same input "
           "through layer.train() and layer.eval().")
    expect(not extra, f"{sorted(extra)} give the same output in both modes.")


q2 = Exercise(
    "10.2",
    f"Which of these layers give a different output in model.train() and model.eval() mode: "
    f"{sorted(CANDIDATES)}? Find out by running them, and assign the set of names to `answer`.",
    _check_q2,
    hint_text="Dropout zeroes random inputs only while training; BatchNorm uses the batch's "
              "statistics while training and its running averages in eval mode.",
    solution_code="""
        answer = {"Dropout", "BatchNorm1d"}
    """,
    wrong=[set(), {"Dropout"}, {"Dropout", "BatchNorm1d", "ReLU"}, "Dropout"],
)

TEST_IMAGES, BATCH, MEAN_LOSS = 10_000, 64, 1.5


def _check_q3(answer):
    expect(isinstance(answer, (tuple, list)) and len(answer) == 2,
           "`answer` should be a pair (what the original prints, the mean loss per image).")
    printed, per_image = (float(v) for v in answer)
    batches = math.ceil(TEST_IMAGES / BATCH)
    expect(not math.isclose(printed, TEST_IMAGES / BATCH * MEAN_LOSS),
           "the number of batches is a whole number: the last batch is smaller but still one "
           "batch (math.ceil).")
    expect(math.isclose(printed, batches * MEAN_LOSS),
           f"{printed} is off: the original adds one batch-mean loss per batch.")
    expect(math.isclose(per_image, MEAN_LOSS), f"{per_image} is off: every image's loss averages "
           "to the same value as every batch's mean here.")


q3 = Exercise(
    "10.3",
    f"The original adds loss.item() of every test batch into total_test_loss. With "
    f"{TEST_IMAGES:,} test images, batch_size={BATCH} and a mean loss of {MEAN_LOSS} on every "
    "batch, what does it print, and what is the mean loss per image? answer = (printed, mean).",
    _check_q3,
    hint_text="How many batches does DataLoader make from 10,000 images with batch_size 64? "
              "The last one is smaller.",
    solution_code="""
        import math
        batches = math.ceil(10_000 / 64)
        answer = (batches * 1.5, 1.5)
    """,
    wrong=[(234.375, 1.5), (1.5, 1.5), (235.5, 235.5), 235.5],
)
