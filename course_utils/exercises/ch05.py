"""Chapter 5 (P14–P15): torchvision data sets and DataLoader."""

import torch
from torch.utils.data import DataLoader, RandomSampler

from course_utils.exercises import Exercise, expect


def _check_q1(answer):
    expect(isinstance(answer, tuple) and len(answer) == 2,
           f"give a pair (number of batches, size of the last batch), got {answer!r}.")
    sizes = [len(b) for b in DataLoader(torch.arange(10_000), batch_size=64, drop_last=False)]
    n, last = answer
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
    wrong=[(156, 16), (157, 64), (156, 64), 157],
)


def _check_q2(answer):
    expect(isinstance(answer, DataLoader), f"give a DataLoader, got {type(answer).__name__}.")
    expect(answer.batch_size == 64, f"batch_size is {answer.batch_size}, not 64.")
    expect(isinstance(answer.sampler, RandomSampler), "the order should be shuffled "
           "every epoch: shuffle=True.")
    expect(answer.drop_last, "the last, smaller batch should be dropped: drop_last=True.")
    imgs, targets = next(iter(answer))
    expect(isinstance(imgs, torch.Tensor) and tuple(imgs.shape[1:]) == (3, 32, 32),
           "batches should hold image tensors (3, 32, 32): give the data set "
           "transform=ToTensor().")
    expect(len(answer) == len(answer.dataset) // 64,
           f"{len(answer)} batches from {len(answer.dataset)} images: is drop_last on?")


q2 = Exercise(
    "5.2",
    "Make a DataLoader over the CIFAR-10 test set (data.cifar10(train=False, "
    "transform=ToTensor())) that gives shuffled batches of 64 and drops the last, smaller "
    "batch. Assign it to `answer`.",
    _check_q2,
    hint_text="DataLoader(test_set, batch_size=..., shuffle=..., drop_last=..., num_workers=0).",
    solution_code="""
        from torch.utils.data import DataLoader
        from torchvision import transforms
        from course_utils import data
        test_set = data.cifar10(train=False, transform=transforms.ToTensor(), verbose=False)
        answer = DataLoader(test_set, batch_size=64, shuffle=True, drop_last=True)
    """,
    wrong=[
        DataLoader(torch.arange(200), batch_size=64, shuffle=False, drop_last=True),
        DataLoader(torch.arange(200), batch_size=64, shuffle=True, drop_last=False),
        DataLoader(torch.arange(200), batch_size=4, shuffle=True, drop_last=True),
        64,
    ],
)
