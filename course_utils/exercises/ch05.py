"""Chapter 5 (P14–P15): torchvision data sets and DataLoader."""

import torch
from torch.utils.data import DataLoader, RandomSampler, Subset

from course_utils.exercises import Exercise, _short, as_pair, call, expect
from course_utils.exercises.i18n import N_


def _check_q1(answer):
    n, last = as_pair(answer, N_("the pair (number of batches, size of the last batch)"))
    sizes = [len(b) for b in DataLoader(torch.arange(10_000), batch_size=64, drop_last=False)]
    expect(n == len(sizes), f"{n} batches is off: count the full batches, then add the "
           "partial one.")
    expect(last == sizes[-1], f"the last batch holds {last}? It holds what is left after the "
           "full batches: 10,000 - 64 × (full batches).")


q1 = Exercise(
    "5.1",
    "The full CIFAR-10 test set has 10,000 images. With DataLoader(batch_size=64, "
    "drop_last=False), how many batches are there and how many images does the last one "
    "hold? Assign the pair (batches, last_size) to `answer`.",
    _check_q1,
    hint_text="divmod(10_000, 64) gives (full batches, images left over).",
    solution_code="""
        full, rest = divmod(10_000, 64)
        answer = (full + (rest > 0), rest)
    """,
    wrong=[(156, 16), (157, 64), (156, 64), 157, ("157", "16"), [16, 157]],
)


def _check_q2(answer):
    expect(isinstance(answer, DataLoader), f"give a DataLoader, got {type(answer).__name__}.")
    expect(answer.batch_size == 64, f"batch_size is {answer.batch_size}, not 64.")
    expect(isinstance(answer.sampler, RandomSampler), "the order should be shuffled "
           "every epoch: shuffle=True.")
    expect(answer.drop_last, "the last, smaller batch should be dropped: drop_last=True.")
    dataset = answer.dataset
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    split = getattr(dataset, "train", None)
    expect(split is not True, "that DataLoader reads the training set (train=True): the "
           "exercise asks for the test set — CIFAR10(root=root, train=False, ...).")
    expect(split is False, f"give a DataLoader over the CIFAR-10 test set (CIFAR10(root=root, "
           f"train=False, ...)), not over {_short(dataset, 40)}.")
    item = call("answer.dataset[0]", answer.dataset.__getitem__, 0)
    img = item[0] if isinstance(item, (tuple, list)) else item
    expect(isinstance(img, torch.Tensor), f"the data set gives {type(img).__name__} images, "
           "which a DataLoader cannot stack into a batch: give the data set "
           "transform=ToTensor().")
    imgs, targets = call("next(iter(answer))", lambda: next(iter(answer)))
    expect(isinstance(imgs, torch.Tensor) and tuple(imgs.shape[1:]) == (3, 32, 32),
           "batches should hold image tensors (3, 32, 32): give the data set "
           "transform=ToTensor().")
    expect(len(answer) == len(answer.dataset) // 64,
           f"{len(answer)} batches from {len(answer.dataset)} images: is drop_last on?")


def _loader(train=False, transform=True):
    """Variants of the reference DataLoader for the known-wrong answers (made on demand)."""
    from torchvision import transforms

    from course_utils.cifar_batches import choose_cifar10

    cifar10, root = choose_cifar10(verbose=False)
    data = cifar10(root=root, train=train, download=True,
                   transform=transforms.ToTensor() if transform else None)
    return DataLoader(data, batch_size=64, shuffle=True, drop_last=True)


q2 = Exercise(
    "5.2",
    "Make a DataLoader over the CIFAR-10 test set with `transform=ToTensor()` (load it as "
    "this chapter does: `CIFAR10, root = choose_cifar10()`, then `CIFAR10(root=root, "
    "train=False, transform=..., download=True)`) that gives shuffled batches of 64 and "
    "drops the last, smaller batch. Assign the DataLoader to `answer`.",
    _check_q2,
    hint_text="DataLoader(test_set, batch_size=..., shuffle=..., drop_last=..., num_workers=0).",
    solution_code="""
        from torch.utils.data import DataLoader
        from torchvision import transforms
        from course_utils.cifar_batches import choose_cifar10
        CIFAR10, root = choose_cifar10(verbose=False)
        test_set = CIFAR10(root=root, train=False, transform=transforms.ToTensor(),
                           download=True)
        answer = DataLoader(test_set, batch_size=64, shuffle=True, drop_last=True)
    """,
    wrong=[
        DataLoader(torch.arange(200), batch_size=64, shuffle=False, drop_last=True),
        DataLoader(torch.arange(200), batch_size=64, shuffle=True, drop_last=False),
        DataLoader(torch.arange(200), batch_size=4, shuffle=True, drop_last=True),
        64,
    ],
    time_limit=30.0,
)


# ----------------------------------------------------------------------------- 5.3
#: (items, batch_size, drop_last) cases the checker predicts for — edge cases included.
_CASES = [(10_000, 64, False), (10_000, 64, True), (200, 64, False), (200, 64, True),
          (1000, 50, False), (1000, 50, True), (10, 4, False), (10, 4, True), (3, 4, False),
          (3, 4, True), (1, 1, False), (50_000, 128, False), (127, 128, True), (129, 128, True)]


def _real(n, batch_size, drop_last):
    loader = DataLoader(range(n), batch_size=batch_size, drop_last=drop_last)
    sizes = [len(indices) for indices in loader.batch_sampler]  # the loader's own batching
    return len(sizes), (sizes[-1] if sizes else 0)


def _check_q3(answer):
    expect(callable(answer) and not isinstance(answer, type),
           f"`answer` should be your function predict_batches (no parentheses), got "
           f"{_short(answer)}.")
    for n, batch_size, drop_last in _CASES:
        got = call(f"predict_batches({n}, {batch_size}, {drop_last})", answer, n, batch_size,
                   drop_last)
        want = _real(n, batch_size, drop_last)
        expect(isinstance(got, (tuple, list)) and len(got) == 2,
               f"predict_batches({n}, {batch_size}, {drop_last}) returned {_short(got)}; "
               "return a pair (number of batches, size of the last batch).")
        got = as_pair(got, N_("a pair (number of batches, size of the last batch)"))
        expect(tuple(got) == want or drop_last,
               f"predict_batches({n}, {batch_size}, drop_last={drop_last}) gave {got}, but a "
               f"real DataLoader over {n} items deals {want[0]} batches, the last holding "
               f"{want[1]}.")
        expect(tuple(got) == want,
               f"predict_batches({n}, {batch_size}, drop_last={drop_last}) gave {got}, but a "
               f"real DataLoader over {n} items deals {want[0]} batches, the last holding "
               f"{want[1]}. With drop_last=True the partial batch is gone, so the last batch "
               "is a full one (or there is none: 0, 0).")


def _ignores_drop_last(n, batch_size, drop_last):
    full, rest = divmod(n, batch_size)
    return (full + (rest > 0), rest or batch_size)


def _floor_only(n, batch_size, drop_last):
    return (n // batch_size, batch_size)


def _rest_as_last(n, batch_size, drop_last):
    full, rest = divmod(n, batch_size)
    return (full, rest) if drop_last else (full + (rest > 0), rest)


q3 = Exercise(
    "5.3",
    "Predict before you run: write a function `predict_batches(n_items, batch_size, "
    "drop_last)` that returns the pair (number of batches, size of the last batch) a "
    "`DataLoader(dataset_of_n_items, batch_size=batch_size, drop_last=drop_last)` deals — "
    "with integer arithmetic, not by building a DataLoader. When there is no batch at all, "
    "return (0, 0). The checker compares your predictions with real DataLoaders on cases of "
    "its own (sets that divide evenly, sets smaller than one batch, …). Assign the function "
    "to `answer`.",
    _check_q3,
    hint_text="full, rest = divmod(n_items, batch_size). drop_last=False keeps the partial "
    "batch when rest > 0; drop_last=True drops it. If rest is 0 the last batch is a full one.",
    solution_code="""
        def predict_batches(n_items, batch_size, drop_last):
            full, rest = divmod(n_items, batch_size)
            if drop_last or rest == 0:
                return (full, batch_size if full else 0)
            return (full + 1, rest)

        answer = predict_batches
    """,
    wrong=[_ignores_drop_last, _floor_only, _rest_as_last, (157, 16)],
)
