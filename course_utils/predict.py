"""Inference on photos (P32): load a trained checkpoint, classify any image file.

>>> model, info = load_trained()                     # the course's shipped CIFAR-10 weights
>>> predict_image(model, demo_image("dog"), topk=3, normalize=info["normalize"])
[('dog', 0.95), ('bird', 0.04), ('truck', 0.001)]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torchvision.transforms as T

from course_utils import checkpoints, models
from course_utils.data import CIFAR10_CLASSES, open_rgb, to_rgb
from course_utils.devices import pick_device
from course_utils.i18n import tr

if TYPE_CHECKING:
    from course_utils.viz import Figure

#: The CIFAR-10 weights shipped with the course (how they were made and their measured test
#: accuracy: course_utils/weights/README.md).
SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "cifar10_improved.pt"


def load_trained(checkpoint: str | os.PathLike | None = None, *, device="cpu",
                 model_name: str | None = None) -> tuple[torch.nn.Module, dict]:
    """Build the right network and load weights from ``checkpoint`` (default: shipped ones).

    The architecture comes from the checkpoint's ``model_name`` unless ``model_name`` is
    given. Loading is ``weights_only`` and mapped to ``device`` (GPU-saved files load on a
    CPU). Returns ``(model in eval mode, info)``; ``info`` is a plain dict: ``path``,
    ``model_name``, ``normalize`` (``(mean, std)`` the network was trained with, or None for
    plain ``ToTensor``), ``epoch``, ``test_accuracy`` (None when the file does not say) and
    ``history``.

    Raises ``FileNotFoundError`` (no such file / no shipped weights) and
    :class:`~course_utils.checkpoints.CheckpointError` (unreadable or another architecture).
    """
    device = pick_device(device, verbose=False)
    if checkpoint is None:
        if not SHIPPED_WEIGHTS.is_file():
            raise FileNotFoundError(tr(
                f"the course's trained weights {SHIPPED_WEIGHTS} are missing from this copy. "
                "Train a network (python -m course_utils train) and pass its checkpoint, e.g. "
                "--checkpoint runs/<run>/checkpoints/last.pt."))
        checkpoint = SHIPPED_WEIGHTS
    path = Path(checkpoint)
    state = checkpoints.load_checkpoint(path, map_location=device)
    name = _model_key(model_name or state.get("model_name") or "tudui", path)
    model = models.build_model(name)
    checkpoints.restore_model(model, state["model_state"], source=path)
    history = list(state.get("history") or [])
    info = {"path": path, "model_name": name, "normalize": _normalize_of(state, path),
            "epoch": state.get("epoch") or state.get("epochs"),
            "test_accuracy": state.get("test_accuracy",
                                        history[-1].get("test_accuracy") if history else None),
            "history": history}
    return model.to(device).eval(), info


def _model_key(name: str, source) -> str:
    try:
        return models.model_key(name)
    except ValueError:
        raise checkpoints.CheckpointError(tr(
            f"{source} was trained with model {name!r}, which course_utils.models does not "
            f"define (known: {sorted(models.MODELS)}). Pass model_name= to choose the "
            "network.")) from None


def _normalize_of(state: dict, path) -> tuple | None:
    norm = state.get("normalize")
    if norm is None:
        return None
    try:
        mean, std = (tuple(float(v) for v in part) for part in norm)
    except (TypeError, ValueError):
        raise checkpoints.CheckpointError(tr(
            f"{path} has a malformed 'normalize' entry {norm!r}; expected (mean, std).")) from None
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise checkpoints.CheckpointError(tr(
            f"{path} has 'normalize' {norm!r}; expected three means and three positive stds."))
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
        raise TypeError(tr(f"expected an image file path or a PIL image, got "
                           f"{type(image).__name__}."))
    return to_rgb(image)  # the same conversion as data.open_rgb for files


def predict_image(model, image, topk: int = 3, *, normalize=None,
                  classes=CIFAR10_CLASSES) -> list[tuple[str, float]]:
    """Top-``k`` ``(class name, probability)`` pairs for one image, most likely first.

    ``image``: a path or PIL image of any size and mode. ``normalize``: the ``(mean, std)``
    the model was trained with (``info["normalize"]`` from :func:`load_trained`), None for
    plain ``ToTensor``. Probabilities are Python floats.
    """
    if not 1 <= topk <= len(classes):
        raise ValueError(tr(f"topk must be between 1 and {len(classes)}, got {topk}."))
    device = next(model.parameters()).device
    x = preprocess(image, normalize).to(device)
    model.eval()
    with torch.inference_mode():
        probs = model(x).softmax(dim=1)[0]
    values, indices = probs.topk(topk)
    return [(classes[i], float(v)) for v, i in zip(values.tolist(), indices.tolist(), strict=True)]


def show_prediction(model, image, topk: int = 3, *, normalize=None,
                    classes=CIFAR10_CLASSES) -> Figure:
    """The photo beside a bar chart of its top-``k`` classes, as a course :class:`Figure`
    (a notebook shows it when it is the cell's value or passed to ``display``).

    >>> # show_prediction(model, demo_image("dog"), normalize=info["normalize"])
    """
    # imported here: matplotlib is for notebooks; the command line's predict never draws
    from course_utils.viz import new_figure, style_axes

    ranked = predict_image(model, image, topk, normalize=normalize, classes=classes)
    img = open_rgb(image) if isinstance(image, (str, os.PathLike)) else _pil_rgb(image)
    fig = new_figure(7, 2.6)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
    left.imshow(img)
    style_axes(left, Path(image).name if isinstance(image, (str, os.PathLike)) else "image",
               grid=False)
    left.axis("off")
    right.barh([n for n, _ in ranked][::-1], [p for _, p in ranked][::-1], color="tab:blue")
    right.set_xlim(0, 1)
    style_axes(right, f"top-{topk}: {ranked[0][0]} ({ranked[0][1]:.0%})", xlabel="probability")
    return fig
