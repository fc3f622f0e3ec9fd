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
from course_utils.data import CIFAR10_CLASSES, open_rgb

#: The CIFAR-10 weights shipped with the course (see course_utils/weights/README.md).
SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "cifar10_tudui-bn.pt"


def load_trained(checkpoint: str | os.PathLike | None = None, model_name: str | None = None,
                 device="cpu") -> torch.nn.Module:
    """Build the right network and load weights from ``checkpoint`` (default: shipped ones).

    The architecture comes from the checkpoint's ``model_name`` unless ``model_name`` is
    given. Loading is ``weights_only`` and mapped to ``device`` (GPU-saved files load on a CPU).
    The returned model is in eval mode and carries a ``.normalize`` attribute (mean, std or None).
    """
    path = Path(checkpoint) if checkpoint is not None else SHIPPED_WEIGHTS
    state = checkpoints.load_checkpoint(path, map_location=device)
    name = model_name or state.get("model_name") or "tudui"
    name = {"Tudui": "tudui", "TuduiBN": "tudui-bn"}.get(name, name)
    model = models.build_model(name)
    checkpoints.restore_model(model, state["model_state"], source=path)
    model.normalize = state.get("normalize")
    return model.to(device).eval()


def preprocess(image, normalize=None) -> torch.Tensor:
    """A path or PIL image → float tensor ``(1, 3, 32, 32)``: RGB, resized to 32×32,
    ``ToTensor`` and, when given, ``Normalize(*normalize)``."""
    img = open_rgb(image) if isinstance(image, (str, os.PathLike)) else image.convert("RGB")
    steps = [T.Resize((32, 32)), T.ToTensor()]
    if normalize is not None:
        steps.append(T.Normalize(*normalize))
    return T.Compose(steps)(img).unsqueeze(0)


def predict_image(model, image, topk: int = 3, classes=CIFAR10_CLASSES) -> list[tuple[str, float]]:
    """Top-``k`` ``(class name, probability)`` pairs for one image, most likely first."""
    if not 1 <= topk <= len(classes):
        raise ValueError(f"topk must be between 1 and {len(classes)}, got {topk}.")
    device = next(model.parameters()).device
    x = preprocess(image, getattr(model, "normalize", None)).to(device)
    model.eval()
    with torch.inference_mode():
        probs = model(x).softmax(dim=1)[0]
    values, indices = probs.topk(topk)
    return [(classes[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())]
