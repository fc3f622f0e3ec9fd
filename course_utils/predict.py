"""Inference on photos (P32): load a trained checkpoint, classify any image file.

>>> model = load_trained()                          # the course's shipped CIFAR-10 weights
>>> predict_image(model, demo_image("dog"), topk=3)  # [('dog', 0.8), ('cat', 0.1), ...]
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision.transforms as T

from course_utils import checkpoints, models
from course_utils.data import CIFAR10_CLASSES, open_rgb, to_rgb
from course_utils.devices import pick_device

#: The CIFAR-10 weights shipped with the course (how they were made and their measured test
#: accuracy: course_utils/weights/README.md).
SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "cifar10_improved.pt"


def load_trained(checkpoint: str | os.PathLike | None = None, model_name: str | None = None,
                 device="cpu") -> torch.nn.Module:
    """Build the right network and load weights from ``checkpoint`` (default: shipped ones).

    The architecture comes from the checkpoint's ``model_name`` unless ``model_name`` is
    given. Loading is ``weights_only`` and mapped to ``device`` (GPU-saved files load on a
    CPU). The returned model is in eval mode and carries a ``.normalize`` attribute
    (``(mean, std)`` the network was trained with, or None for plain ``ToTensor``).

    Raises ``FileNotFoundError`` (no such file / no shipped weights) and
    :class:`~course_utils.checkpoints.CheckpointError` (unreadable or another architecture).
    """
    device = pick_device(device, verbose=False)
    if checkpoint is None:
        if not SHIPPED_WEIGHTS.is_file():
            raise FileNotFoundError(
                f"the course's trained weights {SHIPPED_WEIGHTS} are missing from this copy. "
                "Train a network (python -m course_utils train) and pass its checkpoint, e.g. "
                "--checkpoint runs/<run>/checkpoints/last.pt.")
        checkpoint = SHIPPED_WEIGHTS
    path = Path(checkpoint)
    state = checkpoints.load_checkpoint(path, map_location=device)
    name = resolve_model_name(model_name or state.get("model_name") or "tudui", source=path)
    model = models.build_model(name)
    checkpoints.restore_model(model, state["model_state"], source=path)
    model.normalize = _normalize_of(state, path)
    model.checkpoint_info = {k: state[k] for k in ("epoch", "history") if k in state}
    return model.to(device).eval()


def resolve_model_name(name: str, source="checkpoint") -> str:
    """A ``course_utils.models`` name from a registry name or a class name
    (``"TuduiBN"`` → ``"tudui-bn"``)."""
    if name in models.MODELS:
        return name
    for key, cls in models.MODELS.items():
        if getattr(cls, "__name__", None) == name:
            return key
    raise checkpoints.CheckpointError(
        f"{source} was trained with model {name!r}, which course_utils.models does not "
        f"define (known: {sorted(models.MODELS)}). Pass model_name= to choose the network.")


def _normalize_of(state: dict, path) -> tuple | None:
    norm = state.get("normalize")
    if norm is None:
        return None
    try:
        mean, std = (tuple(float(v) for v in part) for part in norm)
    except (TypeError, ValueError):
        raise checkpoints.CheckpointError(
            f"{path} has a malformed 'normalize' entry {norm!r}; expected (mean, std).") from None
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise checkpoints.CheckpointError(
            f"{path} has 'normalize' {norm!r}; expected three means and three positive stds.")
    return mean, std


def preprocess(image, normalize=None) -> torch.Tensor:
    """A path or PIL image → float tensor ``(1, 3, 32, 32)``: RGB (RGBA, grayscale and
    palette images converted), resized to 32×32, ``ToTensor`` and, when given,
    ``Normalize(*normalize)``.

    >>> preprocess(demo_image("dog")).shape
    torch.Size([1, 3, 32, 32])
    """
    img = open_rgb(image) if isinstance(image, (str, os.PathLike)) else _pil_rgb(image)
    steps = [T.Resize((32, 32)), T.ToTensor()]
    if normalize is not None:
        steps.append(T.Normalize(*normalize))
    return T.Compose(steps)(img).unsqueeze(0)


def _pil_rgb(image):
    if not hasattr(image, "convert"):
        raise TypeError(f"expected an image file path or a PIL image, got {type(image).__name__}.")
    return to_rgb(image)  # the same conversion as data.open_rgb for files


def predict_image(model, image, topk: int = 3, classes=CIFAR10_CLASSES) -> list[tuple[str, float]]:
    """Top-``k`` ``(class name, probability)`` pairs for one image, most likely first.

    ``image``: a path or PIL image of any size and mode. Probabilities are Python floats.
    """
    if not 1 <= topk <= len(classes):
        raise ValueError(f"topk must be between 1 and {len(classes)}, got {topk}.")
    device = next(model.parameters()).device
    x = preprocess(image, getattr(model, "normalize", None)).to(device)
    model.eval()
    with torch.inference_mode():
        probs = model(x).softmax(dim=1)[0]
    values, indices = probs.topk(topk)
    return [(classes[i], float(v)) for v, i in zip(values.tolist(), indices.tolist(), strict=True)]


def show_prediction(model, image, topk: int = 3, classes=CIFAR10_CLASSES):
    """Plot the photo beside a bar chart of its top-``k`` classes; returns the ranking.

    Works in a notebook (the figure is displayed) and in scripts (``plt.show()``).
    """
    import matplotlib.pyplot as plt

    ranked = predict_image(model, image, topk, classes)
    img = open_rgb(image) if isinstance(image, (str, os.PathLike)) else _pil_rgb(image)
    fig, (left, right) = plt.subplots(1, 2, figsize=(7, 2.6),
                                      gridspec_kw={"width_ratios": [1, 1.3]})
    left.imshow(img)
    left.set_title(Path(image).name if isinstance(image, (str, os.PathLike)) else "image")
    left.axis("off")
    names = [n for n, _ in ranked][::-1]
    right.barh(names, [p for _, p in ranked][::-1], color="tab:blue")
    right.set_xlim(0, 1)
    right.set_xlabel("probability")
    right.set_title(f"top-{topk}: {ranked[0][0]} ({ranked[0][1]:.0%})")
    fig.tight_layout()
    plt.show()
    return ranked
