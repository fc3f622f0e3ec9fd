"""Chapter 4 (P10–P13): __call__, ToTensor, Normalize, Resize, Compose, RandomCrop."""

import torch
from PIL import Image
from torchvision import transforms

from course_utils import data
from course_utils.exercises import Exercise, expect


def _check_q1(answer):
    expect(isinstance(answer, type), f"give the class itself, got {type(answer).__name__}.")
    obj = answer()
    expect(callable(obj), "instances are not callable: define __call__(self, x) in the class.")
    for x in (3, -2, 0.5):
        expect(obj(x) == 2 * x, f"Doubler()({x}) gave {obj(x)!r}, expected {2 * x!r}.")


class _NotCallable:
    def double(self, x):
        return 2 * x


class _Squares:
    def __call__(self, x):
        return x * x


q1 = Exercise(
    "4.1",
    "Like the course's Person, write a class `Doubler` whose instances can be called: "
    "Doubler()(3) == 6. Assign the class to `answer`.",
    _check_q1,
    hint_text="def __call__(self, x): return 2 * x — then obj(3) runs obj.__call__(3).",
    solution_code="""
        class Doubler:
            def __call__(self, x):
                return 2 * x

        answer = Doubler
    """,
    wrong=[_NotCallable, _Squares, 6],
)


def _check_q2(answer):
    if isinstance(answer, torch.Tensor):
        answer = answer.item()
    expect(isinstance(answer, (int, float)), f"give a number, got {type(answer).__name__}.")
    real = transforms.Normalize([0.5], [0.5])(torch.full((1, 1, 1), 0.2)).item()
    expect(abs(answer - real) < 1e-6,
           f"{answer} is not it: Normalize computes (input - mean) / std.")


q2 = Exercise(
    "4.2",
    "A pixel of value 0.2 goes through Normalize(mean=[0.5], std=[0.5]). What comes out? "
    "Work it out by hand and assign the number to `answer`.",
    _check_q2,
    hint_text="output = (input - mean) / std.",
    solution_code="answer = (0.2 - 0.5) / 0.5",
    wrong=[0.2, -0.3, 0.6, -0.15],
)


def _check_q3(answer):
    expect(isinstance(answer, transforms.Compose), f"give a transforms.Compose, got "
           f"{type(answer).__name__}.")
    steps = answer.transforms
    resize = [t for t in steps if isinstance(t, transforms.Resize)]
    crops = [t for t in steps if isinstance(t, transforms.RandomCrop)]
    expect(len(resize) == 1 and resize[0].size in (64, [64]),
           "the first step should be Resize(64) — an int, so the shorter side becomes 64 and "
           "the aspect ratio is kept (a tuple would squash the photo).")
    expect(len(crops) == 1 and tuple(crops[0].size) == (48, 48), "add RandomCrop(48).")
    expect(steps.index(resize[0]) < steps.index(crops[0]), "resize first, then crop.")
    out = answer(Image.open(data.demo_image("dog")))
    expect(isinstance(out, torch.Tensor) and out.dtype == torch.float32,
           "the result should be a float tensor: end with ToTensor().")
    expect(tuple(out.shape) == (3, 48, 48), f"output shape is {tuple(out.shape)}, not (3, 48, 48).")


q3 = Exercise(
    "4.3",
    "Build a Compose that resizes the shorter side to 64 (keeping the aspect ratio), takes a "
    "random 48×48 crop and returns a tensor. Assign it to `answer`.",
    _check_q3,
    hint_text="transforms.Compose([transforms.Resize(...), transforms.RandomCrop(...), "
    "transforms.ToTensor()]). Resize(int) keeps the aspect ratio; Resize((h, w)) does not.",
    solution_code="""
        from torchvision import transforms
        answer = transforms.Compose([
            transforms.Resize(64), transforms.RandomCrop(48), transforms.ToTensor(),
        ])
    """,
    wrong=[
        transforms.Compose([transforms.Resize((48, 48)), transforms.ToTensor()]),
        transforms.Compose([transforms.Resize((64, 64)), transforms.RandomCrop(48),
                            transforms.ToTensor()]),
        transforms.Compose([transforms.Resize(64), transforms.RandomCrop(48)]),
        transforms.ToTensor(),
    ],
)
