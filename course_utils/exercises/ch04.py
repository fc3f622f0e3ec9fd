"""Chapter 4 (P10–P13): __call__, ToTensor, Normalize, Resize, Compose, RandomCrop."""

import torch
from PIL import Image
from torchvision import transforms
from torchvision.transforms import v2

from course_utils import data
from course_utils.exercises import Exercise, _short, as_number, call, close, expect
from course_utils.exercises.i18n import N_


def _check_q1(answer):
    expect(isinstance(answer, type), f"give the class itself, got {type(answer).__name__}.")
    obj = call(f"{answer.__name__}()", answer)
    expect(callable(obj), "instances are not callable: define __call__(self, x) in the class.")
    for x in (3, -2, 0.5):
        got = call(f"{answer.__name__}()({x})", obj, x)
        expect(got == 2 * x, f"Doubler()({x}) gave {_short(got)}, expected {2 * x!r}.")


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
    answer = as_number(answer)
    real = transforms.Normalize([0.5], [0.5])(torch.full((1, 1, 1), 0.2)).item()
    expect(close(answer, real, digits=5),
           f"{answer} is not it: Normalize computes (input - mean) / std.")


q2 = Exercise(
    "4.2",
    "A pixel of value 0.2 goes through Normalize(mean=[0.5], std=[0.5]). What comes out? "
    "Work it out by hand and assign the number to `answer`.",
    _check_q2,
    hint_text="output = (input - mean) / std.",
    solution_code="answer = (0.2 - 0.5) / 0.5",
    wrong=[0.2, -0.3, 0.6, -0.15, "-0.6"],
)


def _own_images() -> list[Image.Image]:
    """The checker's own test images: random noise (so every crop is unique), one wide,
    one tall and one just large enough, plus the course's dog photo."""
    gen = torch.Generator().manual_seed(4)
    images = []
    for h, w in ((96, 160), (200, 90), (64, 64)):
        pixels = (torch.rand(h, w, 3, generator=gen) * 255).to(torch.uint8).numpy()
        images.append(Image.fromarray(pixels))
    with Image.open(data.demo_image("dog")) as dog:
        images.append(dog.convert("RGB"))
    return images


def _is_a_window_of(crop: torch.Tensor, full: torch.Tensor, tol: float = 0.04) -> bool:
    """True when ``crop`` (C, h, w) equals some h×w window of ``full`` (C, H, W)."""
    _, h, w = crop.shape
    windows = full.unfold(1, h, 1).unfold(2, w, 1)  # (C, H-h+1, W-w+1, h, w)
    diff = (windows - crop[:, None, None]).abs().amax(dim=(0, 3, 4))
    return bool(diff.min() <= tol)


#: the Compose classes of transforms v1 and v2
_COMPOSES = (transforms.Compose, v2.Compose)
#: steps that turn a PIL image into a float tensor (v1 ToTensor; v2 ToImage + ToDtype)
_TO_TENSOR = ("ToTensor", "ToImage", "PILToTensor", "ToDtype", "ConvertImageDtype")


def _steps(pipeline) -> list:
    """The steps of a (possibly nested) v1 or v2 Compose, in order."""
    steps = []
    for t in getattr(pipeline, "transforms", []):
        steps += _steps(t) if isinstance(t, _COMPOSES) else [t]
    return steps


def _check_q3(answer):
    expect(isinstance(answer, _COMPOSES), f"give a transforms.Compose (v1 or v2), got "
           f"{type(answer).__name__}.")
    steps = _steps(answer)
    names = [type(t).__name__ for t in steps]
    resize = [t for t in steps if type(t).__name__ == "Resize"]
    size = getattr(resize[0], "size", None) if resize else 64
    expect(size in (64, [64], (64,)),
           "Resize should get the int 64, so the shorter side becomes 64 and the aspect ratio "
           "is kept (a tuple would squash the photo).")
    expect("Normalize" in names,
           "the pipeline should end with Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]).")
    converted = [n for n in names[:names.index("Normalize")] if n in _TO_TENSOR]
    expect(converted or "Lambda" in names,
           "Normalize comes before ToTensor(): Normalize works on tensors, so turn the image "
           "into a tensor first (ToTensor(), then Normalize).")
    torch.manual_seed(0)
    for img in _own_images():
        out = call(N_(f"answer(a {img.size[0]}×{img.size[1]} PIL image)"), answer, img)
        expect(isinstance(out, torch.Tensor) and out.dtype == torch.float32,
               f"on a {img.size[0]}×{img.size[1]} image the result is {type(out).__name__}, "
               "not a float tensor: ToTensor() must come before Normalize.")
        expect(tuple(out.shape) == (3, 48, 48),
               f"on a {img.size[0]}×{img.size[1]} (width×height) image the output shape is "
               f"{tuple(out.shape)}, not (3, 48, 48): resize first, then crop 48.")
        expect(out.min() >= -1.0001 and out.max() <= 1.0001 and out.min() < 0,
               f"values run from {out.min():.2f} to {out.max():.2f}: after Normalize with mean "
               "0.5 and std 0.5 they lie in [-1, 1].")
        full = transforms.ToTensor()(transforms.Resize(64)(img))
        expect(_is_a_window_of(out * 0.5 + 0.5, full),
               f"on a {img.size[0]}×{img.size[1]} image the 48×48 output is not a crop of "
               "the image resized to a shorter side of 64 — check the order and the sizes.")
    wide = _own_images()[0]
    crops = [call(N_("answer(the same image) six times"), answer, wide) for _ in range(6)]
    expect(any(not torch.equal(crops[0], c) for c in crops[1:]),
           "six calls on the same image gave the same crop: use RandomCrop, which picks a "
           "new place every call (CenterCrop always takes the middle).")


q3 = Exercise(
    "4.3",
    "Build a `transforms.Compose` that (1) resizes the shorter side to 64, keeping the aspect "
    "ratio, (2) takes a random 48×48 crop, (3) turns the image into a tensor and (4) "
    "normalizes every channel with mean 0.5 and std 0.5. The checker runs it on PIL images "
    "of its own (wide, tall, square) and checks shape, range and that each output really is "
    "a crop of the resized image. Assign it to `answer`.",
    _check_q3,
    hint_text="transforms.Compose([transforms.Resize(...), transforms.RandomCrop(...), "
    "transforms.ToTensor(), transforms.Normalize(...)]). Resize(int) keeps the aspect ratio; "
    "Resize((h, w)) does not.",
    solution_code="""
        from torchvision import transforms
        answer = transforms.Compose([
            transforms.Resize(64),
            transforms.RandomCrop(48),
            transforms.ToTensor(),
            transforms.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
        ])
    """,
    wrong=[
        transforms.Compose([transforms.Resize((64, 64)), transforms.RandomCrop(48),
                            transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)]),
        transforms.Compose([transforms.Resize(64), transforms.RandomCrop(48),
                            transforms.ToTensor()]),
        transforms.Compose([transforms.RandomCrop(48), transforms.Resize(64),
                            transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)]),
        transforms.Compose([transforms.Resize(64), transforms.RandomCrop(48),
                            transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.2] * 3)]),
        transforms.Compose([transforms.Resize(64), transforms.CenterCrop(48),
                            transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)]),
        transforms.Compose([transforms.Resize(64), transforms.RandomCrop(48),
                            transforms.Normalize([0.5] * 3, [0.5] * 3), transforms.ToTensor()]),
        v2.Compose([v2.ToImage(), v2.Resize((64, 64)), v2.RandomCrop(48),
                    v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5] * 3, [0.5] * 3)]),
        transforms.ToTensor(),
    ],
)
