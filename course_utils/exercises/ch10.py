"""Chapter 10 (P27–P31): accuracy as a float, train/eval modes, the summed test loss."""

import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils.exercises import (
    Exercise,
    _short,
    as_names,
    as_pair,
    call,
    close,
    expect,
    names_sorted,
)
from course_utils.exercises.i18n import N_


def _check_q1(fn):
    expect(callable(fn), "`answer` should be a function accuracy(outputs, targets).")
    g = torch.Generator().manual_seed(10)
    for n in (1, 7, 64):
        outputs = torch.randn(n, 10, generator=g)
        targets = torch.randint(0, 10, (n,), generator=g)
        targets[: n // 2] = outputs[: n // 2].argmax(1)
        expected = sum(int(max(range(10), key=lambda j, r=row: r[j]) == t)
                       for row, t in zip(outputs.tolist(), targets.tolist(), strict=True)) / n
        got = call(N_(f"accuracy(outputs of shape ({n}, 10), targets)"), fn, outputs, targets)
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


def _check_modes(answer):
    names = as_names(answer, N_("a set of layer names"))
    unknown = names - set(CANDIDATES)
    expect(not unknown, f"{names_sorted(unknown)} are not among {sorted(CANDIDATES)}.")
    expected = _mode_dependent()
    missing, extra = expected - names, names - expected
    expect(not missing, f"{sorted(missing)} also behave differently — try it: the same input "
           "through layer.train() and layer.eval().")
    expect(not extra, f"{sorted(extra)} give the same output in both modes.")


q3 = Exercise(
    "10.3",
    f"Which of these layers give a different output in model.train() and model.eval() mode: "
    f"{sorted(CANDIDATES)}? Find out by running them, and assign the set of names to `answer`.",
    _check_modes,
    hint_text="Dropout zeroes random inputs only while training; BatchNorm uses the batch's "
              "statistics while training and its running averages in eval mode.",
    solution_code="""
        answer = {"Dropout", "BatchNorm1d"}
    """,
    wrong=[set(), {"Dropout"}, {"Dropout", "BatchNorm1d", "ReLU"}, "Dropout",
           {nn.Dropout, nn.Linear}, {"Dropout", nn.BatchNorm1d, 3}],
)

TEST_IMAGES, BATCH, MEAN_LOSS = 10_000, 64, 1.5


def _check_summed(answer):
    printed, per_image = as_pair(answer, N_("a pair (what the original prints, the mean loss "
                                            "per image)"))
    batches = math.ceil(TEST_IMAGES / BATCH)
    expect(not math.isclose(printed, TEST_IMAGES / BATCH * MEAN_LOSS),
           "the number of batches is a whole number: the last batch is smaller but still one "
           "batch (math.ceil).")
    expect(math.isclose(printed, batches * MEAN_LOSS),
           f"{printed} is off: the original adds one batch-mean loss per batch.")
    expect(math.isclose(per_image, MEAN_LOSS), f"{per_image} is off: every image's loss averages "
           "to the same value as every batch's mean here.")


q2 = Exercise(
    "10.2",
    f"The original adds loss.item() of every test batch into total_test_loss. With "
    f"{TEST_IMAGES:,} test images, batch_size={BATCH} and a mean loss of {MEAN_LOSS} on every "
    "batch, what does it print, and what is the mean loss per image? answer = (printed, mean).",
    _check_summed,
    hint_text="How many batches does DataLoader make from 10,000 images with batch_size 64? "
              "The last one is smaller.",
    solution_code="""
        import math
        batches = math.ceil(10_000 / 64)
        answer = (batches * 1.5, 1.5)
    """,
    wrong=[(234.375, 1.5), (1.5, 1.5), (235.5, 235.5), 235.5],
)


class _Probe(nn.Module):
    """A small classifier with Dropout that records, at every forward pass, whether it ran in
    training mode and whether autograd was recording."""

    def __init__(self):
        super().__init__()
        with torch.random.fork_rng():  # the same weights every time; the caller's RNG untouched
            torch.manual_seed(10)
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(),
                                     nn.Dropout(0.5), nn.Linear(16, 3))
        self.seen = []

    def forward(self, x):
        self.seen.append((self.training, torch.is_grad_enabled()))
        return self.net(x)


def _probe_data():
    """10 images in batches of 4, 4, 2 (the last batch is smaller, as in real test sets):
    a real DataLoader, so ``len(loader.dataset)`` works as in the course's loop."""
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(10, 3, 2, 2, generator=g), torch.randint(0, 3, (10,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=4, shuffle=False), x, y


def _check_q4(fn):
    expect(callable(fn), "`answer` should be a function evaluate(model, loader).")
    model = _Probe()
    model.train()  # as after a training epoch
    loader, x, y = _probe_data()
    result = call("evaluate(model, loader)", fn, model, loader)
    expect(isinstance(result, (tuple, list)) and len(result) == 2,
           f"return a pair (mean loss per image, accuracy), got {_short(result, 80)}.")
    loss, accuracy = result
    expect(all(isinstance(v, float) for v in result), "both numbers should be Python floats "
           f"(.item()), got {type(loss).__name__} and {type(accuracy).__name__}.")
    expect(model.seen, "evaluate never ran the model on the loader's batches.")
    expect(not any(training for training, _ in model.seen),
           "the model ran in training mode (Dropout active): call model.eval() first.")
    expect(not any(grad for _, grad in model.seen),
           "autograd recorded the test batches: put the loop in `with torch.no_grad():`.")
    model.eval()
    with torch.no_grad():
        outputs = model.net(x)
    per_image = nn.functional.cross_entropy(outputs, y).item()
    right = (outputs.argmax(1) == y).sum().item() / len(y)
    batch_means = sum(nn.functional.cross_entropy(model.net(bx), by).item()
                      for bx, by in loader) / len(loader)
    expect(not math.isclose(loss, batch_means, rel_tol=1e-6) or math.isclose(loss, per_image),
           "that is the mean of the batch means; the last batch is smaller, so weight each "
           "batch by its number of images (loss.item() * len(targets)), then divide by all.")
    expect(close(loss, per_image, digits=5),
           f"the mean loss per image should be {per_image:.6f}, got {loss:.6f}.")
    expect(close(accuracy, right, digits=6),
           f"the accuracy should be {right:.6f} (right answers / images), got {accuracy:.6f}.")


def _evaluate_variant(*, weighted=True, eval_mode=True, no_grad=True, as_float=True):
    def evaluate(model, loader):
        if eval_mode:
            model.eval()
        loss_fn = nn.CrossEntropyLoss()
        total_loss, right, images = 0.0, 0, 0
        with torch.no_grad() if no_grad else torch.enable_grad():
            for imgs, targets in loader:
                outputs = model(imgs)
                batch = loss_fn(outputs, targets).item()
                total_loss += batch * len(targets) if weighted else batch
                right += (outputs.argmax(1) == targets).sum()
                images += len(targets)
        loss = total_loss / (images if weighted else len(loader))
        accuracy = right / images
        return loss, accuracy.item() if as_float else accuracy
    return evaluate


q4 = Exercise(
    "10.4",
    "Write evaluate(model, loader) → (mean loss per image, accuracy), both Python floats: the "
    "test half of the course's loop as a function. Use nn.CrossEntropyLoss(); the last batch "
    "of a loader may be smaller than the others. Assign the function to `answer`. The checker "
    "runs it on a model and batches of its own.",
    _check_q4,
    hint_text="model.eval(); with torch.no_grad(): for each batch add loss.item() * "
    "len(targets) and (outputs.argmax(1) == targets).sum().item(), count the images; divide "
    "both sums by the number of images.",
    solution_code="""
        import torch
        from torch import nn

        def evaluate(model, loader):
            model.eval()
            loss_fn = nn.CrossEntropyLoss()
            total_loss, right, images = 0.0, 0, 0
            with torch.no_grad():
                for imgs, targets in loader:
                    outputs = model(imgs)
                    total_loss += loss_fn(outputs, targets).item() * len(targets)
                    right += (outputs.argmax(1) == targets).sum().item()
                    images += len(targets)
            return total_loss / images, right / images

        answer = evaluate
    """,
    wrong=[_evaluate_variant(weighted=False), _evaluate_variant(eval_mode=False),
           _evaluate_variant(no_grad=False), _evaluate_variant(as_float=False),
           lambda model, loader: (0.0, 1.0)],
)
